"""A stand-in server that writes each answer byte for byte: statuses, heads and bodies that no
HTTP framework would send (an informational status as the final answer, a ``Content-Range`` of
thousands of digits, a body cut off mid-way).

It answers the login itself (with :func:`tests.faults.crafted.token_answer`) and every other
request with what its route returns; every request other than the login is recorded. It binds
127.0.0.1 on a free port and is stopped by the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from tests.faults.crafted import token_answer
from tests.support.loopback import LoopbackHTTPServer, LoopbackServer


def raw_answer(status: int, body: bytes = b"", *headers: str) -> bytes:
    """A raw HTTP/1.1 answer, with ``Content-Length`` unless ``headers`` set one."""
    lines = [f"HTTP/1.1 {status} X", *headers]
    if not any(line.lower().startswith("content-length:") for line in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(frozen=True)
class Received:
    """A request the server received (other than the login)."""

    method: str
    path: str
    #: Its headers, names lower-cased.
    headers: dict[str, str]


#: What to send for a request: the raw bytes, and whether to close the connection right after
#: them (an answer cut off).
Route = Callable[[Received], tuple[bytes, bool]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.startswith("/login"):
            body = token_answer()
            self.wfile.write(raw_answer(200, body, "Content-Type: application/json"))
            return
        received = Received(
            self.command,
            self.path.split("?")[0],
            {key.lower(): value for key, value in self.headers.items()},
        )
        with self.server.lock:
            self.server.received.append(received)
            route = self.server.route
        raw, cut = route(received)
        self.wfile.write(raw)
        self.wfile.flush()
        if cut:
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _reply


class _Server(LoopbackHTTPServer):
    route: Route
    received: list[Received]
    lock: threading.Lock


class RawServer(LoopbackServer):
    """The stand-in server on ``127.0.0.1:port``; use as a context manager.

    :param route: what to answer (see :data:`Route`); :meth:`answer_with` replaces it.
    """

    def __init__(self, route: Route = lambda _: (raw_answer(200), False)) -> None:
        server = _Server(_Handler)
        server.route = route
        server.received = []
        server.lock = threading.Lock()
        self._raw = server
        super().__init__(server)

    @property
    def received(self) -> list[Received]:
        """Every request but the login, in order."""
        with self._raw.lock:
            return list(self._raw.received)

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request but the login, in order."""
        return [(r.method, r.path) for r in self.received]

    def answer_with(self, raw: bytes) -> None:
        """Answer every request from now on with the bytes ``raw``."""
        with self._raw.lock:
            self._raw.route = lambda _: (raw, False)
