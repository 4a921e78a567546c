"""Shared fixtures: the reference server as a real subprocess on a free port.

``reference_server`` (one per session and xdist worker, fault hooks enabled, default token
lifetimes) is for tests that only need a server; ``server_factory`` starts dedicated servers
with extra CLI arguments (short token lifetimes, restarts, ...); ``fresh_server`` is one
dedicated server with fault hooks. Every process is stopped at teardown, even on failure.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.support.server import ReferenceServer  # noqa: E402

ServerFactory = Callable[..., ReferenceServer]


@pytest.fixture(scope="session")
def reference_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceServer]:
    """A reference server shared by the session (per xdist worker), with fault hooks.

    Tests that set faults must clear them (``with reference_server.faults(...):``).
    """
    data_dir = tmp_path_factory.mktemp("reference-server")
    with ReferenceServer(data_dir, extra_args=("--enable-fault-hooks",)) as server:
        yield server


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start dedicated servers: ``server_factory("--access-token-ttl", "2")``.

    Each call gets its own data directory; all are stopped when the test ends.
    """
    started: list[ReferenceServer] = []

    def start(*args: str, admin_password: str = "admin-test-password") -> ReferenceServer:
        data_dir = tmp_path_factory.mktemp("server")
        server = ReferenceServer(data_dir, admin_password=admin_password, extra_args=args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def fresh_server(server_factory: ServerFactory) -> ReferenceServer:
    """A dedicated server with fault hooks enabled, stopped after the test."""
    return server_factory("--enable-fault-hooks")
