"""A hostile server that redirects every request to a second listener recording what it gets.

The second listener plays "another origin": anything it receives (a login body, a refresh
token, an ``Authorization`` header, batch records) would be a credential or data leak.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass(frozen=True)
class Received:
    """One request the other origin got."""

    method: str
    path: str
    authorization: str | None
    body: bytes


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class _Recorder(_QuietHandler):
    server: _RecordingServer

    def _record(self) -> None:
        body = self._read_body()
        self.server.received.append(
            Received(self.command, self.path, self.headers.get("Authorization"), body)
        )
        answer = (
            b'{"token_type": "Bearer", "access_token": "stolen", "expires_in": 3600, '
            b'"expires_on": 4102444800, "refresh_token": "stolen", "BatchExecutionId": "evil"}'
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_DELETE = _record


class _Redirector(_QuietHandler):
    server: _RedirectingServer

    def _redirect(self) -> None:
        self._read_body()
        self.send_response(self.server.status)
        self.send_header("Location", f"{self.server.target}{self.path}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_DELETE = _redirect


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    received: list[Received]


class _RedirectingServer(ThreadingHTTPServer):
    daemon_threads = True
    status: int
    target: str


class RedirectingServer:
    """``port`` redirects (``status``) every request to ``other`` on another port."""

    def __init__(self, status: int = 307) -> None:
        self._other = _RecordingServer(("127.0.0.1", 0), _Recorder)
        self._other.received = []
        self._front = _RedirectingServer(("127.0.0.1", 0), _Redirector)
        self._front.status = status
        self._front.target = f"http://127.0.0.1:{self._other.server_address[1]}"
        servers = (self._front, self._other)
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]

    @property
    def status(self) -> int:
        """The redirect status every request gets."""
        return self._front.status

    @property
    def port(self) -> int:
        """Where the hostile server listens."""
        return int(self._front.server_address[1])

    @property
    def other_origin(self) -> str:
        """The address redirects point to."""
        return self._front.target

    @property
    def received(self) -> list[Received]:
        """What the other origin got (must stay empty)."""
        return list(self._other.received)

    def __enter__(self) -> RedirectingServer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for server in (self._front, self._other):
            server.shutdown()
            server.server_close()
