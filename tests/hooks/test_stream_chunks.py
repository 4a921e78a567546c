"""Reading a body on the async path, streamed in chunks or whole: a body that has wholly
arrived is read from memory (no timer, no awaited read), one still arriving is awaited (a
streamed one under the stall timeout); both give the same bytes within the same limits, and a
body cut short is an error either way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from airflow_provider.api.calls import ApiRequest
from airflow_provider.api.errors import MrsDeployConnectionError, MrsDeployResponseTooLargeError
from airflow_provider.api.exchange import RawResponse
from airflow_provider.api.limits import ERROR_BODY_LIMIT
from airflow_provider.hooks import transport_async
from tests.support.loopback import LoopbackHTTPServer, LoopbackServer

BODY = bytes(range(256)) * 300  # 76,800 bytes


class Handler(BaseHTTPRequestHandler):
    """``/whole``: the body in one write; ``/drip``: in pieces with pauses; ``/cut``: a body
    shorter than its ``Content-Length``. The query may set ``status``, and ``announce=no``
    leaves ``Content-Length`` out (the body then ends when the connection closes)."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.path = url.path
        self.send_response(int(query.get("status", "200")))
        if query.get("announce") != "no":
            announced = len(BODY) + (100 if self.path == "/cut" else 0)
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
        self.close_connection = True  # HTTP/1.0: the end of an unannounced body

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(LoopbackHTTPServer(Handler)) as running:
        yield running


async def _fetched(
    session: aiohttp.ClientSession, port: int, path: str
) -> tuple[aiohttp.ClientResponse, bool]:
    """The response to ``GET path`` (headers read), and whether its body has wholly arrived:
    every body has but a dripped one, after a pause."""
    response = await session.get(f"http://127.0.0.1:{port}{path}")
    if not path.startswith("/drip"):
        await asyncio.sleep(0.2)  # all of it has arrived, and the server has closed
    return response, response.content.is_eof()


async def _chunks(port: int, path: str, chunk_size: int) -> tuple[list[bytes], bool]:
    """The chunks read, and whether the body had wholly arrived when reading began."""
    async with aiohttp.ClientSession() as session:
        response, arrived = await _fetched(session, port, path)
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


def _read(port: int, path: str, limit: int | None) -> tuple[bytes, bool]:
    """The body ``_read_body`` keeps, and whether it had wholly arrived when reading began."""

    async def read() -> tuple[bytes, bool]:
        async with aiohttp.ClientSession() as session:
            response, arrived = await _fetched(session, port, path)
            try:
                settings: Any = SimpleNamespace(max_response_bytes=limit)
                request = ApiRequest("GET", path)
                return await transport_async._read_body(response, settings, request), arrived
            finally:
                response.close()

    return asyncio.run(read())


@pytest.mark.parametrize("announce", ["yes", "no"])
@pytest.mark.parametrize("how", ["whole", "drip"])
def test_the_same_whole_body_whether_it_has_arrived_or_not(
    server: LoopbackServer, how: str, announce: str
) -> None:
    body, arrived = _read(server.port, f"/{how}?announce={announce}", None)
    assert arrived is (how == "whole")
    assert body == BODY


@pytest.mark.parametrize("how", ["whole", "drip"])
def test_an_answer_growing_past_the_limit_is_refused_either_way(
    server: LoopbackServer, how: str
) -> None:
    with pytest.raises(MrsDeployResponseTooLargeError, match="max_response_bytes"):
        _read(server.port, f"/{how}?announce=no", len(BODY) - 1)
    body, _ = _read(server.port, f"/{how}?announce=no", len(BODY))
    assert body == BODY  # exactly at the limit is allowed


@pytest.mark.parametrize("how", ["whole", "drip"])
def test_an_error_answer_is_kept_up_to_its_limit_either_way(
    server: LoopbackServer, how: str
) -> None:
    # A limit smaller than the body: an error body is not counted against it.
    body, _ = _read(server.port, f"/{how}?status=500", 1000)
    assert body == BODY[:ERROR_BODY_LIMIT]


def test_a_whole_body_cut_short_is_an_error_even_once_it_has_ended(
    server: LoopbackServer,
) -> None:
    with pytest.raises(aiohttp.ClientPayloadError):
        _read(server.port, "/cut", None)
