"""Reading a whole (not streamed) answer on the async path: one that has arrived with its
headers is taken from memory, one still arriving is awaited; both keep the same body and the
same limits, and a body cut short is still an error."""

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
from airflow_provider.api.errors import MrsDeployResponseTooLargeError
from airflow_provider.api.limits import ERROR_BODY_LIMIT
from airflow_provider.hooks import transport_async
from tests.support.loopback import LoopbackHTTPServer, LoopbackServer

BODY = bytes(range(256)) * 300  # 76,800 bytes: more than one read chunk's worth of errors


class Handler(BaseHTTPRequestHandler):
    """``?how=whole`` sends the body in one write, ``drip`` in pieces with pauses, ``cut`` one
    shorter than its ``Content-Length``; ``status`` sets the status; ``announce=no`` leaves out
    ``Content-Length`` (the body ends when the connection closes)."""

    def do_GET(self) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        how = query.get("how", "whole")
        self.send_response(int(query.get("status", "200")))
        if query.get("announce") != "no":
            self.send_header("Content-Length", str(len(BODY) + (100 if how == "cut" else 0)))
        self.end_headers()
        if how == "drip":
            for start in range(0, len(BODY), 10_000):
                self.wfile.write(BODY[start : start + 10_000])
                self.wfile.flush()
                time.sleep(0.02)
        else:
            self.wfile.write(BODY)
            self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(LoopbackHTTPServer(Handler)) as running:
        yield running


def _read(port: int, query: str, limit: int | None) -> tuple[bytes, bool]:
    """The body ``_read_body`` keeps, and whether it had wholly arrived when reading began."""

    async def read() -> tuple[bytes, bool]:
        async with aiohttp.ClientSession() as session:
            response = await session.get(f"http://127.0.0.1:{port}/files?{query}")
            try:
                if "how=drip" not in query:
                    await asyncio.sleep(0.2)  # all of it has arrived, and the server has closed
                arrived = response.content.is_eof()
                settings: Any = SimpleNamespace(max_response_bytes=limit)
                request = ApiRequest("GET", "/files")
                return await transport_async._read_body(response, settings, request), arrived
            finally:
                response.close()

    return asyncio.run(read())


@pytest.mark.parametrize("announce", ["yes", "no"])
@pytest.mark.parametrize("how", ["whole", "drip"])
def test_the_same_body_whether_it_has_arrived_or_not(
    server: LoopbackServer, how: str, announce: str
) -> None:
    body, arrived = _read(server.port, f"how={how}&announce={announce}", None)
    assert arrived is (how == "whole")
    assert body == BODY


@pytest.mark.parametrize("how", ["whole", "drip"])
def test_an_answer_growing_past_the_limit_is_refused_either_way(
    server: LoopbackServer, how: str
) -> None:
    with pytest.raises(MrsDeployResponseTooLargeError, match="max_response_bytes"):
        _read(server.port, f"how={how}&announce=no", len(BODY) - 1)
    body, _ = _read(server.port, f"how={how}&announce=no", len(BODY))
    assert body == BODY  # exactly at the limit is allowed


@pytest.mark.parametrize("how", ["whole", "drip"])
def test_an_error_answer_is_kept_up_to_its_limit_either_way(
    server: LoopbackServer, how: str
) -> None:
    # A limit smaller than the body: an error body is not counted against it.
    body, _ = _read(server.port, f"how={how}&status=500", 1000)
    assert body == BODY[:ERROR_BODY_LIMIT]


def test_a_body_cut_short_is_an_error_even_after_it_stopped_arriving(
    server: LoopbackServer,
) -> None:
    with pytest.raises(aiohttp.ClientPayloadError):
        _read(server.port, "how=cut", None)
