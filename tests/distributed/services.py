"""The servers a distributed Airflow deployment stands on, as real processes on loopback.

- :class:`PostgresServer`: a throwaway PostgreSQL cluster (``initdb`` into a temporary folder,
  ``postgres`` on a free port with its unix socket in that folder), the metadata database;
- :class:`RedisServer`: ``redis-server`` on a free port, nothing persisted, the Celery broker;
- :class:`S3Server`: moto's S3-compatible server, the shared storage of the outputs.

Each runs as a :class:`~tests.e2e.processes.ManagedProcess` (own log file, own process group)
with the deployment's marker in its environment, and is stopped with everything it started.
PostgreSQL refuses to run as root: when the suite runs as root, ``initdb`` and ``postgres`` run
as ``nobody`` (through ``setpriv``), in a folder outside pytest's private temporary directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from tests.e2e.cluster import free_port
from tests.e2e.processes import ManagedProcess

START_TIMEOUT = 60.0
UNPRIVILEGED_USER = "nobody"


class ServiceError(AssertionError):
    """A server did not start; the message ends with its log."""


def wait_for_port(process: ManagedProcess, port: int, timeout: float = START_TIMEOUT) -> None:
    """Wait (bounded) until ``127.0.0.1:port`` accepts connections; fail if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        if not process.running:
            raise ServiceError(f"{process.name} exited while starting:\n{process.log_tail()}")
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{process.name} did not listen on {port} within {timeout:.0f}s:\n"
                f"{process.log_tail()}"
            )
        time.sleep(0.2)


def find_postgres_bin() -> Path:
    """The folder of ``initdb`` and ``postgres``: on the PATH, else Debian's versioned folder."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise ServiceError(
        "PostgreSQL server binaries (initdb, postgres) not found; install them with "
        "`make distributed-deps` (Debian package postgresql)"
    )


def _as_unprivileged() -> list[str]:
    """The command prefix that drops root for PostgreSQL (empty when not root)."""
    if os.geteuid() != 0:
        return []
    entry = pwd.getpwnam(UNPRIVILEGED_USER)
    return [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--clear-groups",
        "--",
    ]


class PostgresServer:
    """A PostgreSQL cluster of its own, with one database for Airflow.

    :param log_dir: Folder of the server's log file.
    :param env: Environment of the server process (carries the deployment's marker).
    :param database: Name of the database created for Airflow.
    """

    def __init__(self, log_dir: Path, env: Mapping[str, str], database: str = "airflow") -> None:
        self.bin_dir = find_postgres_bin()
        # Outside pytest's temporary directory, which only root may enter.
        self.base = Path(tempfile.mkdtemp(prefix="mrsdeploy-postgres-"))
        self.data_dir = self.base / "data"
        self.socket_dir = self.base / "sockets"
        self.port = free_port()
        self.user = "airflow"
        self.database = database
        self.prefix = _as_unprivileged()
        self.process = ManagedProcess(
            "postgres",
            [
                *self.prefix,
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
                # A throwaway database: durability buys nothing here and costs the 2-core
                # machine its disk time.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            env,
            log_dir,
            cwd=self.base,
        )

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the Airflow database (psycopg2, over TCP on loopback)."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def dsn(self, database: str | None = None) -> str:
        """libpq connection string of a database (the Airflow one by default)."""
        name = database or self.database
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={name}"

    def start(self) -> None:
        """``initdb``, start the server, wait until it answers, create the database."""
        for folder in (self.data_dir, self.socket_dir):
            folder.mkdir(mode=0o700)
        if self.prefix:
            entry = pwd.getpwnam(UNPRIVILEGED_USER)
            for folder in (self.base, self.data_dir, self.socket_dir):
                os.chown(folder, entry.pw_uid, entry.pw_gid)
        initdb = subprocess.run(
            [
                *self.prefix,
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if initdb.returncode != 0:
            raise ServiceError(f"initdb failed ({initdb.returncode}):\n{initdb.stderr[-3000:]}")
        self.process.start()
        wait_for_port(self.process, self.port)
        self._wait_ready()
        self.execute(f'CREATE DATABASE "{self.database}"', database="postgres")

    def _wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(self.dsn("postgres"), connect_timeout=5).close()
                return
            except psycopg2.OperationalError as exc:  # still starting up
                if time.monotonic() > deadline:
                    raise ServiceError(
                        f"postgres not ready: {exc}\n{self.process.log_tail()}"
                    ) from exc
                time.sleep(0.2)

    def execute(self, statement: str, database: str | None = None) -> None:
        """Run one statement outside a transaction (``CREATE DATABASE`` needs that)."""
        import psycopg2

        connection = psycopg2.connect(self.dsn(database), connect_timeout=10)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def query(
        self, statement: str, parameters: tuple[object, ...] = ()
    ) -> list[tuple[object, ...]]:
        """Rows of one query on the Airflow database (read-only use)."""
        import psycopg2

        connection = psycopg2.connect(self.dsn(), connect_timeout=10)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, parameters)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def stop(self) -> None:
        """Fast shutdown (clients disconnected), then the process tree; remove the files."""
        if self.process.running:
            subprocess.run(
                [
                    *self.prefix,
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "20",
                    "stop",
                ],
                cwd=self.base,
                capture_output=True,
                timeout=60,
                check=False,
            )
        self.process.stop()
        shutil.rmtree(self.base, ignore_errors=True)


class RedisServer:
    """``redis-server`` on a free loopback port, persisting nothing.

    :param root: Folder of its working directory.
    :param log_dir: Folder of its log file.
    :param env: Environment of the process (carries the deployment's marker).
    """

    def __init__(self, root: Path, log_dir: Path, env: Mapping[str, str]) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError(
                "redis-server not found; install it with `make distributed-deps` "
                "(Debian package redis-server)"
            )
        self.port = free_port()
        folder = root / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            "redis",
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
            ],
            env,
            log_dir,
            cwd=folder,
        )

    @property
    def url(self) -> str:
        """Broker URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self.process.start()
        wait_for_port(self.process, self.port)

    def stop(self) -> None:
        """Stop the process. Safe to repeat."""
        self.process.stop()


class S3Server:
    """moto's S3-compatible server on a free loopback port (objects kept in its memory).

    :param root: Its working directory.
    :param log_dir: Folder of its log file.
    :param env: Environment of the process (carries the deployment's marker).
    """

    def __init__(self, root: Path, log_dir: Path, env: Mapping[str, str]) -> None:
        self.port = free_port()
        self.process = ManagedProcess(
            "s3",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env,
            log_dir,
            cwd=root,
        )

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self.process.start()
        wait_for_port(self.process, self.port)

    def stop(self) -> None:
        """Stop the process. Safe to repeat."""
        self.process.stop()
