"""A ``Content-Range`` whose numbers are thousands of digits long fails like any other range
that does not fit, on the blocking and the async download path.

Python's ``int()`` refuses a decimal string of more than 4300 digits with a bare
``ValueError``; the provider's range parser used to convert whatever digits the header held,
so such a header (a broken or hostile server, or something in between) escaped as that
``ValueError`` instead of the provider's ``MrsDeployProtocolError``, both on a first answer and
on the answer to a resume. The stand-in server here writes its answers byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from airflow_provider.api.errors import MrsDeployProtocolError
from airflow_provider.hooks import MrsDeployHook
from tests.support.loopback import LoopbackHTTPServer, LoopbackServer

PATHS = ("sync", "async")
FILE = ("svc", "v1", "b1", 0, "f.txt")
CONTENT = b"abcdefghij"
#: 5000 digits: past the 4300 ``int()`` converts.
HUGE = "9" * 5000

#: Answers a file request: (the request's headers, lower-cased) -> the raw bytes to send, and
#: whether to close the connection right after them (an interrupted download).
Route = Callable[[dict[str, str]], tuple[bytes, bool]]


def _token() -> bytes:
    return json.dumps(
        {
            "token_type": "Bearer",
            "access_token": "access-1",
            "refresh_token": "refresh-1",
            "expires_in": 3600,
            "expires_on": int(time.time()) + 3600,
        }
    ).encode()


def answer(status: int, body: bytes, *headers: str) -> bytes:
    """A raw HTTP/1.1 answer with ``Content-Length`` (unless ``headers`` set one)."""
    lines = [f"HTTP/1.1 {status} X", *headers]
    if not any(line.lower().startswith("content-length:") for line in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        headers = {key.lower(): value for key, value in self.headers.items()}
        if self.path.startswith("/login"):
            self.wfile.write(answer(200, _token(), "Content-Type: application/json"))
            return
        with self.server.lock:
            self.server.file_requests.append(headers)
        raw, cut = self.server.route(headers)
        self.wfile.write(raw)
        self.wfile.flush()
        if cut:  # the answer is not whole: the connection breaks after it
            self.close_connection = True

    do_GET = do_POST = _reply


class _Server(LoopbackHTTPServer):
    route: Route
    file_requests: list[dict[str, str]]
    lock: threading.Lock


class RawServer(LoopbackServer):
    """A loopback server answering file requests with ``route``'s raw bytes."""

    def __init__(self, route: Route) -> None:
        server = _Server(_Handler)
        server.route = route
        server.file_requests = []
        server.lock = threading.Lock()
        self.raw = server
        super().__init__(server)


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Route], RawServer]]:
    """``serve(route)``: a started raw server, as the connection of :func:`download`."""
    started: list[RawServer] = []

    def start(route: Route) -> RawServer:
        server = RawServer(route)
        server.__enter__()
        started.append(server)
        monkeypatch.setenv(
            "AIRFLOW_CONN_MRSDEPLOY_HUGE_RANGE",
            json.dumps(
                {
                    "conn_type": "mrsdeploy",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "login": "admin",
                    "password": "pw-123456",
                    "extra": {
                        "max_retries": 2,
                        "retry_min_wait": 0.01,
                        "retry_max_wait": 0.02,
                        "timeout": 5,
                    },
                }
            ),
        )
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


def download(path: str) -> bytes:
    """The file, read whole on ``path`` (``"sync"`` or ``"async"``) by a new hook."""
    hook = MrsDeployHook("mrsdeploy_huge_range")
    if path == "sync":
        try:
            return b"".join(hook.iter_batch_file(*FILE))
        finally:
            hook.close()

    async def read() -> bytes:
        try:
            return b"".join([chunk async for chunk in hook.aiter_batch_file(*FILE)])
        finally:
            await hook.aclose()

    return asyncio.run(read())


def _resuming(range_answer: Callable[[int], bytes]) -> Route:
    """A file whose first answer (200, ``ETag``, length 10) breaks after 5 of its bytes; a
    resume (``Range: bytes=N-``) is answered with ``range_answer(N)``. (The hook may not have
    delivered the 5 bytes before the break: it then resumes from 0.)"""

    def route(headers: dict[str, str]) -> tuple[bytes, bool]:
        asked = headers.get("range")
        if asked is None:
            return answer(200, CONTENT[:5], "Content-Length: 10", 'ETag: "e1"'), True
        assert asked.startswith("bytes=") and asked.endswith("-"), asked
        assert headers.get("if-range") == '"e1"'
        return range_answer(int(asked[len("bytes=") : -1])), False

    return route


@pytest.mark.parametrize("path", PATHS)
def test_a_first_answer_with_a_huge_range_is_a_protocol_error(
    path: str, serve: Callable[[Route], RawServer]
) -> None:
    server = serve(
        lambda headers: (
            answer(206, b"abc", f"Content-Range: bytes 0-{HUGE}/10", 'ETag: "e1"'),
            False,
        )
    )
    with pytest.raises(MrsDeployProtocolError, match="answered with part of it") as caught:
        download(path)
    # The message quotes the start of the header, not its 5000 digits.
    assert len(str(caught.value)) < 600
    assert len(server.raw.file_requests) == 1  # refused, not retried


@pytest.mark.parametrize("digits", [5000, 20])
@pytest.mark.parametrize("path", PATHS)
def test_a_resume_answered_with_a_huge_range_is_a_protocol_error(
    path: str, digits: int, serve: Callable[[Route], RawServer]
) -> None:
    """20 digits is already more than any real file's size: refused like 5000."""
    number = "9" * digits
    server = serve(
        _resuming(
            lambda start: answer(
                206, CONTENT[start:], f"Content-Range: bytes {start}-{number}/10", 'ETag: "e1"'
            )
        )
    )
    with pytest.raises(MrsDeployProtocolError, match=r"asked to resume at byte \d+, ") as caught:
        download(path)
    assert len(str(caught.value)) < 600
    ranges = [headers.get("range") for headers in server.raw.file_requests]
    assert len(ranges) == 2 and ranges[0] is None and ranges[1] is not None  # not retried


@pytest.mark.parametrize("path", PATHS)
def test_a_resume_answered_with_an_ordinary_range_still_completes(
    path: str, serve: Callable[[Route], RawServer]
) -> None:
    """The bound on the digits leaves real ranges alone (upper-case unit included)."""
    server = serve(
        _resuming(
            lambda start: answer(
                206, CONTENT[start:], f"Content-Range: BYTES {start}-9/10", 'ETag: "e1"'
            )
        )
    )
    assert download(path) == CONTENT
    assert len(server.raw.file_requests) == 2
