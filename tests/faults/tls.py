"""An HTTPS reference server for the TLS tests: a self-signed certificate made on the spot, and
the reference app served by uvicorn with it in a thread (the server's CLI has no TLS flags)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

from airflow_provider.server.app import create_app
from airflow_provider.server.settings import ServerSettings
from tests.support.certificates import self_signed

START_TIMEOUT = 30.0


class TlsServer:
    """The reference app over HTTPS on 127.0.0.1 (free port), in a thread of the test process.

    :param directory: data directory and where the certificate is written.
    :param admin_password: password of ``admin``.
    """

    def __init__(self, directory: Path, admin_password: str) -> None:
        self.cert, key = self_signed(directory)
        self.admin_password = admin_password
        app = create_app(ServerSettings(data_dir=directory / "data", admin_password=admin_password))
        config = uvicorn.Config(
            app, ssl_certfile=str(self.cert), ssl_keyfile=str(key), log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> TlsServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTPS test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(15)
        self._socket.close()
