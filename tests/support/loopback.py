"""An HTTP server of the tests' own (a stand-in for a hostile or odd web node) in a daemon
thread on a free loopback port, stopped and joined when its ``with`` block ends."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


class LoopbackHTTPServer(ThreadingHTTPServer):
    """The server: request threads are daemons, and handlers that hang or drip watch
    :attr:`stopping` so that stopping never waits for them."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.stopping = threading.Event()


class LoopbackServer:
    """Serves ``server`` from a thread while in a ``with`` block.

    :param server: the server (its handler reads what to do from attributes set on it).
    """

    def __init__(self, server: LoopbackHTTPServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
