"""Fixtures of the fault tests: connections (direct or through the fault proxy) and log capture.

Connections use quick retries (``retry_min_wait`` 0.05 s) so that provoked retries stay short;
waits asked by ``Retry-After`` are honoured as sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.faults.crafted import CraftedServer
from tests.faults.proxy import FaultProxy
from tests.support.server import ReferenceServer

#: Quick backoff so retries provoked by the tests stay short.
FAST_RETRIES: dict[str, Any] = {"retry_min_wait": 0.05, "retry_max_wait": 0.3}

ConnSetter = Callable[..., str]


def connection_json(port: int, password: str, **extra: Any) -> str:
    """The JSON form of an ``mrsdeploy`` connection to ``127.0.0.1:port``."""
    return json.dumps(
        {
            "conn_type": "mrsdeploy",
            "host": "127.0.0.1",
            "port": port,
            "login": "admin",
            "password": password,
            "extra": {**FAST_RETRIES, **extra},
        }
    )


@pytest.fixture
def set_default_conn(monkeypatch: pytest.MonkeyPatch) -> ConnSetter:
    """Point ``mrsdeploy_default`` at a port: ``set_default_conn(port, password, **extra)``."""

    def point(port: int, password: str, **extra: Any) -> str:
        monkeypatch.setenv(
            "AIRFLOW_CONN_MRSDEPLOY_DEFAULT", connection_json(port, password, **extra)
        )
        return "mrsdeploy_default"

    return point


@pytest.fixture
def fast_conn(reference_server: ReferenceServer, set_default_conn: ConnSetter) -> str:
    """``mrsdeploy_default`` straight to the shared reference server, quick retries."""
    return set_default_conn(reference_server.port, reference_server.admin_password)


@pytest.fixture
def crafted(set_default_conn: ConnSetter) -> Iterator[CraftedServer]:
    """A stand-in server answering crafted values, as the default connection."""
    with CraftedServer() as server:
        set_default_conn(server.port, "pw")
        yield server


@pytest.fixture
def proxy(reference_server: ReferenceServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of the shared reference server, stopped after the test."""
    with FaultProxy(lambda: ("127.0.0.1", reference_server.port)) as running:
        yield running


@pytest.fixture
def proxied_conn(
    proxy: FaultProxy, reference_server: ReferenceServer, set_default_conn: ConnSetter
) -> str:
    """``mrsdeploy_default`` through the fault proxy, quick retries."""
    return set_default_conn(proxy.port, reference_server.admin_password)


def _structlog_level_tables() -> list[Any]:
    """Airflow's per-logger level tables (the task SDK and the core each carry a copy)."""
    tables = []
    for module in ("airflow.sdk._shared.logging.structlog", "airflow._shared.logging.structlog"):
        try:
            imported = __import__(module, fromlist=["PER_LOGGER_LEVELS"])
        except ImportError:
            continue
        tables.append(imported.PER_LOGGER_LEVELS)
    return tables


@pytest.fixture
def all_logs(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[[], str]]:
    """Capture every log line at DEBUG: stdlib records (caplog) and Airflow's structlog output
    (written to stdout/stderr, captured by capsys). Call the fixture's value for the text so far.
    """
    caplog.set_level(logging.DEBUG)
    tables = _structlog_level_tables()
    saved = [table[""] for table in tables]
    for table in tables:
        table[""] = logging.DEBUG
    seen: list[str] = []

    def text() -> str:
        captured = capsys.readouterr()
        seen.extend([captured.out, captured.err])
        return "\n".join([caplog.text, *seen])

    yield text
    for table, level in zip(tables, saved, strict=True):
        table[""] = level
