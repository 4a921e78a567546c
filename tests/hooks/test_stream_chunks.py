"""Reading a streamed body in chunks on the async path: a body that has wholly arrived is read
from memory (no timer), one still arriving is awaited under the stall timeout; both give the
same chunks, and a body cut short is an interruption either way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import aiohttp
import pytest

from airflow_provider.api.errors import MrsDeployConnectionError
from airflow_provider.api.exchange import RawResponse
from airflow_provider.hooks import transport_async
from tests.support.loopback import LoopbackHTTPServer, LoopbackServer

BODY = bytes(range(256)) * 300  # 76,800 bytes


class Handler(BaseHTTPRequestHandler):
    """``/whole``: the body in one write; ``/drip``: in pieces with pauses; ``/cut``: a body
    shorter than its ``Content-Length``."""

    def do_GET(self) -> None:
        announced = len(BODY) + (100 if self.path == "/cut" else 0)
        self.send_response(200)
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        if self.path == "/drip":
            for start in range(0, len(BODY), 10_000):
                self.wfile.write(BODY[start : start + 10_000])
                self.wfile.flush()
                time.sleep(0.02)
        else:
            self.wfile.write(BODY)
            self.wfile.flush()
        if self.path == "/cut":
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(LoopbackHTTPServer(Handler)) as running:
        yield running


async def _chunks(port: int, path: str, chunk_size: int) -> tuple[list[bytes], bool]:
    """The chunks read, and whether the body had wholly arrived when reading began."""
    async with aiohttp.ClientSession() as session:
        response = await session.get(f"http://127.0.0.1:{port}{path}")
        if path != "/drip":
            await asyncio.sleep(0.2)  # all of it has arrived
        arrived = response.content.is_eof()
        raw = RawResponse(response.status, response.headers, stream=response)
        chunks = [
            chunk
            async for chunk in transport_async.aiter_stream(
                raw, chunk_size, "GET", path, stall_timeout=5
            )
        ]
        return chunks, arrived


@pytest.mark.parametrize("chunk_size", [1_000, 4_096, 65_536, 1 << 20])
@pytest.mark.parametrize("path", ["/whole", "/drip"])
def test_the_same_whole_chunks_whether_the_body_has_arrived_or_not(
    server: LoopbackServer, path: str, chunk_size: int
) -> None:
    chunks, arrived = asyncio.run(_chunks(server.port, path, chunk_size))
    assert arrived is (path == "/whole")
    assert b"".join(chunks) == BODY
    assert all(len(chunk) == chunk_size for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= chunk_size


def test_a_body_cut_short_is_an_interruption_even_once_it_has_ended(
    server: LoopbackServer,
) -> None:
    with pytest.raises(MrsDeployConnectionError, match="download interrupted"):
        asyncio.run(_chunks(server.port, "/cut", 4_096))


def test_a_read_cancelled_midway_closes_the_response_and_reads_nothing_more(
    server: LoopbackServer,
) -> None:
    """Cancelled while a chunk is still arriving (a task cancelled, a deadline), the response is
    closed rather than returned to the pool half read, and the iterator is over."""

    async def cancelled_midway() -> tuple[bool, list[bytes]]:
        async with aiohttp.ClientSession() as session:
            response = await session.get(f"http://127.0.0.1:{server.port}/drip")
            raw = RawResponse(response.status, response.headers, stream=response)
            chunks = transport_async.aiter_stream(raw, 65_536, "GET", "/drip", stall_timeout=5)
            reading = asyncio.ensure_future(anext(chunks))
            await asyncio.sleep(0.01)  # the first 64 KiB have not all arrived yet
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
            return response.closed, [chunk async for chunk in chunks]

    closed, after = asyncio.run(cancelled_midway())
    assert closed and after == []
