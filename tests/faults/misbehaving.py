"""A deliberately misbehaving HTTP server, for faults the reference server cannot produce.

It answers every ``GET`` with a scripted body: a file that ignores ``Range``, a file that
changes between requests, a connection cut after N bytes, an endless body, or an announced
length far beyond any limit. With ``file_names`` set it plays a server that lists (and serves)
hostile file names: ``GET .../files`` returns the names and ``GET .../files/<name>`` returns
``content for <name>``. ``POST /login`` returns a token pair, so hooks with a login and
password work against it. It binds 127.0.0.1 on a free port and is stopped by the test.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.support.loopback import LoopbackHTTPServer, LoopbackServer


@dataclass
class Script:
    """What the server does; tests change it between calls.

    :param content: the file served (``body`` mode).
    :param cut_after: reset the connection after this many body bytes, for the first
        ``cuts`` requests.
    :param honour_range: answer ``Range`` requests with ``206``; otherwise always ``200``.
    :param mode: ``body`` (serve ``content``), ``endless`` (a chunked body that never ends) or
        ``huge`` (announce an enormous ``Content-Length`` and send a few bytes).
    :param change_after: serve ``changed`` (with another ETag) from this request number on.
    """

    content: bytes = b""
    cut_after: int | None = None
    cuts: int = 0
    honour_range: bool = True
    mode: str = "body"
    change_after: int | None = None
    changed: bytes = b""
    file_names: list[str] | None = None
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        now = int(time.time())
        body = json.dumps(
            {
                "token_type": "Bearer",
                "access_token": "misbehaving-access-token",
                "expires_in": 3600,
                "expires_on": now + 3600,
                "refresh_token": "misbehaving-refresh-token",
            }
        ).encode()
        self._send(200, body, {"Content-Type": "application/json"})

    def do_GET(self) -> None:
        script = self.server.script
        script.requests.append((self.path, self.headers.get("Range")))
        number = len(script.requests)
        if script.file_names is not None:
            self._named_files(script.file_names)
            return
        if script.mode == "endless":
            self._endless()
            return
        if script.mode == "huge":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(50 * 1024**3))
            self.end_headers()
            self.wfile.write(b"[" + b"1," * 1000)
            self.wfile.flush()
            self._reset()
            return
        content = script.content
        if script.change_after is not None and number >= script.change_after:
            content = script.changed
        etag = '"' + hashlib.sha256(content).hexdigest()[:16] + '"'
        start = 0
        requested = self.headers.get("Range")
        if requested and script.honour_range and self.headers.get("If-Range") in (None, etag):
            start = int(requested.removeprefix("bytes=").split("-")[0])
        body = content[start:]
        headers = {"Content-Type": "application/octet-stream", "ETag": etag}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        cut = None
        if script.cut_after is not None and script.cuts > 0:
            script.cuts -= 1
            cut = script.cut_after
        self._send(206 if start else 200, body, headers, cut=cut)

    def _named_files(self, names: list[str]) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path.endswith("/files"):
            self._send(200, json.dumps(names).encode(), {"Content-Type": "application/json"})
            return
        name = urllib.parse.unquote(path.rsplit("/files/", 1)[1])
        body = f"content for {name}".encode()
        self._send(200, body, {"Content-Type": "application/octet-stream"})

    def _send(
        self, status: int, body: bytes, headers: dict[str, str], cut: int | None = None
    ) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cut is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[:cut])
        self.wfile.flush()
        time.sleep(0.05)
        self._reset()

    def _endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"1," * 32768
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        try:
            self.wfile.write(b"1\r\n[\r\n")
            while not self.server.stopping.is_set():
                self.wfile.write(framed)
        except OSError:
            pass  # the client gave up, as it should
        self.close_connection = True

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


class _Server(LoopbackHTTPServer):
    script: Script


class MisbehavingServer(LoopbackServer):
    """The server in a thread: ``with MisbehavingServer() as server: server.script.mode = ...``."""

    def __init__(self) -> None:
        self.script = Script()
        server = _Server(_Handler)
        server.script = self.script
        super().__init__(server)
