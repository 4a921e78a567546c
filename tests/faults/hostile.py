"""A hostile stand-in for the web node: black holes, slow drips and failing token endpoints.

It plays just enough of the API for the hook, the trigger and the operators to get going (login,
refresh, a service, a batch's status and files, cancel), and each route can be told to misbehave:

- ``hang``: read the request, then never answer (until the server stops);
- ``drip_headers`` / ``drip_body``: answer one byte every ``drip_interval`` seconds;
- ``status``: answer with another status (and ``retry_after``) instead of the normal answer;
- ``body``: answer with a crafted JSON body.

Every request is recorded (method, path, ``Authorization``, body), so tests can check what was
sent and how often. It binds 127.0.0.1 on a free port and is stopped by the test (``with``).
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.support.loopback import LoopbackHTTPServer, LoopbackServer

ACCESS_TOKEN = "hostile-access-token-0123456789"
REFRESH_TOKEN = "hostile-refresh-token-0123456789"
FILE_CONTENT = b"0123456789" * 2000


@dataclass
class Misbehaviour:
    """What one route does instead of answering normally (every field optional).

    :param hang: never answer.
    :param drip_headers: send the status line and headers one byte at a time.
    :param drip_body: send the body one byte at a time.
    :param status: answer this status (with ``body``, or a small JSON error).
    :param retry_after: ``Retry-After`` header value sent with ``status``.
    :param body: the JSON value to answer with.
    :param times: misbehave this many times, then answer normally (None: always).
    """

    hang: bool = False
    drip_headers: bool = False
    drip_body: bool = False
    status: int | None = None
    retry_after: str | None = None
    body: Any = None
    times: int | None = None
    slow_read: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One request the server got."""

    method: str
    path: str
    authorization: str | None
    body: bytes
    user_agent: str | None = None


@dataclass
class Script:
    """The server's behaviour; tests set it before the call they make.

    :param routes: misbehaviour per route name: ``login``, ``refresh``, ``service``,
        ``start``, ``status``, ``cancel``, ``files``, ``file``.
    :param drip_interval: seconds between two dripped bytes.
    :param progress: ``(completed, total)`` of each successive status answer (the last repeats);
        the batch is ``InProgress`` until ``completed == total``.
    :param expires_in: lifetime of the tokens the login issues, seconds.
    :param access_token: the access token the login issues.
    """

    routes: dict[str, Misbehaviour] = field(default_factory=dict)
    drip_interval: float = 0.2
    progress: list[tuple[int, int]] = field(default_factory=lambda: [(1, 3)])
    expires_in: int = 3600
    access_token: str = ACCESS_TOKEN
    seen: list[Seen] = field(default_factory=list)

    def count(self, route: str) -> int:
        """How many requests reached a route."""
        return sum(1 for item in self.seen if route_of(item.method, item.path) == route)


def route_of(method: str, path: str) -> str:
    """The route name of a request (see :class:`Script`); a request sent to the server as to a
    proxy names the whole URL (``http://host:port/path``)."""
    bare = urllib.parse.urlsplit(path).path if "://" in path else path.split("?", 1)[0]
    parts = [part for part in bare.split("/") if part]
    if bare == "/login":
        return "login"
    if bare == "/login/refreshToken":
        return "refresh"
    if parts[:1] == ["services"]:
        return "service"
    if parts[:1] == ["api"] and "files" in parts:
        return "file" if parts[-1] != "files" else "files"
    if parts[:1] == ["api"] and len(parts) == 4 and parts[3] == "batch" and method == "POST":
        return "start"
    if parts[:1] == ["api"] and len(parts) >= 5:
        return "cancel" if method == "DELETE" else "status"
    return "other"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        script = self.server.script
        slow = script.routes.get(route_of(self.command, self.path))
        body = self._read_body(length, slow.slow_read if slow else 0.0, script.drip_interval)
        script.seen.append(
            Seen(
                self.command,
                self.path,
                self.headers.get("Authorization"),
                body,
                self.headers.get("User-Agent"),
            )
        )
        route = route_of(self.command, self.path)
        bad = script.routes.get(route)
        if bad is not None and bad.times is not None:
            if bad.times <= 0:
                bad = None
            else:
                bad.times -= 1
        if bad is not None and bad.hang:
            self.server.stopping.wait()
            self.close_connection = True
            return
        status, payload, headers = self._answer(route, script, bad)
        self._send(status, payload, headers, bad, script.drip_interval)

    do_GET = do_POST = do_DELETE = _handle

    def _read_body(self, length: int, slow_for: float, interval: float) -> bytes:
        body = bytearray()
        slow_until = time.monotonic() + slow_for
        while len(body) < length and time.monotonic() < slow_until:
            body += self.rfile.read1(min(1 << 16, length - len(body)))
            time.sleep(interval)
        return bytes(body) + self.rfile.read(length - len(body))

    def _answer(
        self, route: str, script: Script, bad: Misbehaviour | None
    ) -> tuple[int, bytes, dict[str, str]]:
        headers = {"Content-Type": "application/json"}
        if bad is not None and bad.status is not None:
            if bad.retry_after is not None:
                headers["Retry-After"] = bad.retry_after
            value = bad.body if bad.body is not None else {"Message": f"scripted {bad.status}"}
            return bad.status, json.dumps(value).encode(), headers
        if bad is not None and bad.body is not None:
            return 200, json.dumps(bad.body).encode(), headers
        return 200, self._normal(route, script), headers

    def _normal(self, route: str, script: Script) -> bytes:
        if route in ("login", "refresh"):
            now = int(time.time())
            return json.dumps(
                {
                    "token_type": "Bearer",
                    "access_token": script.access_token,
                    "expires_in": script.expires_in,
                    "expires_on": now + script.expires_in,
                    "refresh_token": REFRESH_TOKEN,
                }
            ).encode()
        if route == "status":
            polls = script.count("status")
            completed, total = script.progress[min(polls, len(script.progress)) - 1]
            state = "Complete" if completed == total else "InProgress"
            return json.dumps(
                {"state": state, "completedItemCount": completed, "totalItemCount": total}
            ).encode()
        if route == "service":
            bare = urllib.parse.urlsplit(self.path).path
            parts = bare.split("/")  # /services/<name>/<version>
            name, version = parts[2], parts[3] if len(parts) > 3 else ""
            service = {
                "name": name,
                "version": version,
                "inputParameterDefinitions": [],
                "outputParameterDefinitions": [],
            }
            return json.dumps([service]).encode()
        if route == "start":
            return json.dumps({"batchExecutionId": "b1"}).encode()
        if route == "files":
            return json.dumps(["a.txt", "b.txt", "c.txt"]).encode()
        if route == "file":
            return FILE_CONTENT
        return b"{}"

    def _send(
        self,
        status: int,
        payload: bytes,
        headers: dict[str, str],
        bad: Misbehaviour | None,
        interval: float,
    ) -> None:
        head = [f"HTTP/1.1 {status} Scripted"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head += [f"Content-Length: {len(payload)}", "", ""]
        raw_head = "\r\n".join(head).encode("latin-1")
        try:
            self._write(raw_head, bad is not None and bad.drip_headers, interval)
            self._write(payload, bad is not None and bad.drip_body, interval)
        except OSError:
            self.close_connection = True  # the client gave up: what this test wants

    def _write(self, data: bytes, drip: bool, interval: float) -> None:
        if not drip:
            self.wfile.write(data)
            self.wfile.flush()
            return
        for index in range(len(data)):
            if self.server.stopping.is_set():
                raise OSError("stopping")
            self.wfile.write(data[index : index + 1])
            self.wfile.flush()
            time.sleep(interval)


class _Server(LoopbackHTTPServer):
    script: Script


class HostileServer(LoopbackServer):
    """The server, started on entering the ``with`` block and stopped on leaving it."""

    def __init__(self, script: Script | None = None, *, tls: tuple[Path, Path] | None = None):
        """:param script: the behaviour (a normal server by default).
        :param tls: certificate and key files: serve HTTPS with them.
        """
        server = _Server(_Handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        server.script = script or Script()
        self._script_server = server
        super().__init__(server)

    @property
    def script(self) -> Script:
        """The behaviour, changeable between calls."""
        return self._script_server.script


def free_port_without_listener() -> int:
    """A loopback port nothing listens on (for "connection refused")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
