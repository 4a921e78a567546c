"""Each call means the same on both paths: a 404 on the resource itself is an empty listing of
files, a cancel with nothing left to cancel, and a missing batch, whichever path asked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider.api import MrsDeployNotFoundError
from airflow_provider.hooks import MrsDeployHook, endpoints
from tests.faults.conftest import ConnSetter
from tests.faults.conftest import set_default_conn as set_default_conn  # the fixture
from tests.faults.helpers import MT, poll_once
from tests.faults.hostile import HostileServer, Misbehaviour
from tests.faults.test_auth_endpoints import calls, run


@pytest.fixture
def hostile(set_default_conn: ConnSetter) -> Iterator[HostileServer]:
    with HostileServer() as server:
        set_default_conn(server.port, "the-password")
        yield server


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize(
    ("route", "call", "expected"),
    [("files", "list-files", []), ("cancel", "cancel", None)],
)
def test_a_404_on_the_resource_has_one_meaning_on_both_paths(
    hostile: HostileServer, path: str, route: str, call: str, expected: Any
) -> None:
    hostile.script.routes[route] = Misbehaviour(status=404)
    hook = MrsDeployHook()
    assert run(path, hook, *calls(hook)[call]) == expected
    assert hostile.script.count(route) == 1


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_missing_batch_is_an_error_on_both_paths(hostile: HostileServer, path: str) -> None:
    hostile.script.routes["status"] = Misbehaviour(status=404)
    assert isinstance(poll_once(path, MrsDeployHook()), MrsDeployNotFoundError)


def test_the_table_builds_the_requests_the_api_documents() -> None:
    assert endpoints.BATCH_STATUS.request(*MT, "b1", True).path == "/api/mtService/v1.0.0/batch/b1"
    assert endpoints.CANCEL_BATCH.request(*MT, "b1").method == "DELETE"
    assert endpoints.LIST_BATCH_FILES.request(*MT, "b1", 3).path.endswith("/batch/b1/3/files")
    assert endpoints.CANCEL_BATCH.when_missing is not None
    assert endpoints.BATCH_STATUS.when_missing is None  # a missing batch is an error
