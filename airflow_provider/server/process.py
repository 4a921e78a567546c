"""Run the reference server as a real subprocess (tests, the demo, local experiments).

Each instance binds its own free port (``--port 0``) and parses the ``listening on`` line, so
tests can run in parallel (pytest-xdist) without coordinating ports.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

_LISTENING = re.compile(r"listening on (http://\S+):(\d+)")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class ReferenceServerError(RuntimeError):
    """The server did not start (its output is in the message)."""


class ReferenceServer:
    """The reference server in a subprocess.

    :param data_dir: Data directory (kept across :meth:`restart`).
    :param admin_password: Password of ``admin``.
    :param extra_args: More CLI arguments, e.g. ``("--access-token-ttl", "2")``.
    :param start: Start at once (otherwise call :meth:`start`).
    """

    def __init__(
        self,
        data_dir: Path,
        admin_password: str = "admin-test-password",
        extra_args: tuple[str, ...] | list[str] = (),
        start: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.admin_password = admin_password
        self.extra_args = list(extra_args)
        self.url = ""
        self.port = 0
        self.output: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        if start:
            self.start()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int | None = None) -> None:
        """Start the process and wait (bounded) until it accepts requests."""
        if self._process is not None:
            raise RuntimeError("server already running")
        command = [
            sys.executable,
            "-m",
            "airflow_provider.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port if port is not None else 0),
            "--data-dir",
            str(self.data_dir),
            "--admin-password",
            self.admin_password,
            "--log-level",
            "warning",
            *self.extra_args,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("MRSDEPLOY_ADMIN_PASSWORD", None)
        self.output = []
        found = threading.Event()
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self._process = process

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                self.output.append(line.rstrip("\n"))
                match = _LISTENING.search(line)
                if match and not found.is_set():
                    self.url = f"{match.group(1)}:{match.group(2)}"
                    self.port = int(match.group(2))
                    found.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not found.wait(0.05):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = "\n".join(self.output[-40:])
                raise ReferenceServerError(f"reference server did not start:\n{log}")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after a bounded wait). Safe to repeat."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None

    def kill(self) -> None:
        """Kill the process abruptly (SIGKILL), as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self.stop()

    def restart(self, graceful: bool = True) -> None:
        """Stop and start again with the same data directory, on the same port if possible."""
        port = self.port
        if graceful:
            self.stop()
        else:
            self.kill()
        try:
            self.start(port=port)
        except ReferenceServerError:
            self.start(port=0)

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> ReferenceServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- conveniences ------------------------------------------------------------------------

    def airflow_connection(self, **extra: Any) -> dict[str, Any]:
        """The JSON form of an ``mrsdeploy`` connection to this server, logged in as admin.

        Put it in ``AIRFLOW_CONN_<ID>`` (``json.dumps``); keyword arguments become extras.
        """
        connection: dict[str, Any] = {
            "conn_type": "mrsdeploy",
            "host": "127.0.0.1",
            "port": self.port,
            "login": "admin",
            "password": self.admin_password,
        }
        if extra:
            connection["extra"] = extra
        return connection

    def login(self, username: str = "admin", password: str | None = None) -> str:
        """Log in and return an access token."""
        if password is None:
            if username != "admin":
                raise ValueError("give the password of users other than admin")
            password = self.admin_password
        response = requests.post(
            f"{self.url}/login", json={"username": username, "password": password}, timeout=30
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def headers(self, username: str = "admin", password: str | None = None) -> dict[str, str]:
        """``Authorization`` header for a fresh login."""
        return {"Authorization": f"Bearer {self.login(username, password)}"}

    def set_faults(self, **config: Any) -> dict[str, Any]:
        """Replace the fault configuration (server started with ``--enable-fault-hooks``)."""
        response = requests.put(
            f"{self.url}/_faults", json=config, headers=self.headers(), timeout=30
        )
        response.raise_for_status()
        return dict(response.json())

    def clear_faults(self) -> None:
        """Remove every fault."""
        requests.delete(
            f"{self.url}/_faults", headers=self.headers(), timeout=30
        ).raise_for_status()

    @contextmanager
    def faults(self, **config: Any) -> Iterator[dict[str, Any]]:
        """Faults active inside the ``with`` block, cleared on exit even on failure."""
        applied = self.set_faults(**config)
        try:
            yield applied
        finally:
            self.clear_faults()
