"""A forwarding HTTP proxy on loopback that records what passes through it.

It does what a corporate proxy does for the two kinds of request: ``CONNECT host:port`` opens a
tunnel (HTTPS), and a request for an absolute URI (``GET http://host/path``) is forwarded, one
request per connection. Names are resolved through :attr:`ForwardProxy.hosts` first, so a test
can name a server that only the proxy can reach. It can ask for credentials (407 without the
right ``Proxy-Authorization``) or refuse everything (403).
"""

from __future__ import annotations

import base64
import select
import socket
import socketserver
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Passed:
    """One request the proxy saw: method, target (``host:port`` or absolute URI), the
    ``Proxy-Authorization`` it carried, and the status the proxy gave when it answered itself."""

    method: str
    target: str
    proxy_authorization: str | None
    refused: int | None = None


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        proxy = self.server.proxy
        client: socket.socket = self.request
        client.settimeout(30)
        head = _read_head(client)
        if head is None:
            return
        head_text, rest = head
        lines = head_text.split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = [line for line in lines[1:] if line]
        authorization = next(
            (h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("proxy-auth")),
            None,
        )
        refusal = proxy.refusal(authorization)
        proxy.note(Passed(method, target, authorization, refusal))
        if refusal is not None:
            reason = "Proxy Authentication Required" if refusal == 407 else "Forbidden"
            client.sendall(
                f'HTTP/1.1 {refusal} {reason}\r\nProxy-Authenticate: Basic realm="test"\r\n'
                "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection(proxy.resolve(host, int(port)), timeout=30)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            _pipe(client, upstream)
            return
        url = target.split("://", 1)[1]
        authority, _, path = url.partition("/")
        host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "80")
        kept = [
            h for h in headers if not h.lower().startswith(("proxy-", "connection:", "keep-alive:"))
        ]
        request = f"{method} /{path} HTTP/1.1\r\n" + "".join(f"{h}\r\n" for h in kept)
        request += "Connection: close\r\n\r\n"
        body = _read_body(client, kept, rest)
        with socket.create_connection(proxy.resolve(host, int(port)), timeout=30) as upstream:
            upstream.sendall(request.encode("latin-1") + body)
            while chunk := upstream.recv(65536):
                client.sendall(chunk)


def _read_head(sock: socket.socket) -> tuple[str, bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def _read_body(sock: socket.socket, headers: list[str], rest: bytes) -> bytes:
    length = next(
        (int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")),
        0,
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return rest


def _pipe(one: socket.socket, other: socket.socket) -> None:
    with other:
        while True:
            ready, _, _ = select.select([one, other], [], [], 30)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (other if sock is one else one).sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: ForwardProxy


class ForwardProxy:
    """The proxy, in a thread while in a ``with`` block.

    :param hosts: name -> (address, port) the proxy connects to instead of resolving the name.
    :param credentials: ``user:password`` the proxy asks for (407 without them), or None.
    """

    def __init__(
        self,
        hosts: dict[str, tuple[str, int]] | None = None,
        *,
        credentials: str | None = None,
    ) -> None:
        self.hosts = dict(hosts or {})
        self.credentials = credentials
        self.refuse_all = False
        self.passed: list[Passed] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def refusal(self, authorization: str | None) -> int | None:
        """The status the proxy answers itself (403, 407), or None to forward."""
        if self.refuse_all:
            return 403
        if self.credentials is None:
            return None
        expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
        return None if authorization == expected else 407

    def resolve(self, host: str, port: int) -> tuple[str, int]:
        """Where ``host:port`` really is."""
        return self.hosts.get(f"{host}:{port}") or self.hosts.get(host) or (host, port)

    def note(self, passed: Passed) -> None:
        """Record one request."""
        with self._lock:
            self.passed.append(passed)

    def targets(self) -> list[str]:
        """``METHOD target`` of every request seen, in order."""
        with self._lock:
            return [f"{p.method} {p.target}" for p in self.passed]

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
