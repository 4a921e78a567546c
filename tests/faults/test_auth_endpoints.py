"""Failures of the login and refresh endpoints are authentication failures, never "not found".

Only a 404 on the batch resource itself means a batch (or a row's files) is gone. A 404 from
``/login`` or ``/login/refreshToken`` once made listing files return "no files", cancel report
"already gone" and a durable submit start a second batch; a failing refresh never fell back to
a fresh login. Each case runs on the blocking and the async path against a hostile stand-in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from airflow_provider.api import (
    MrsDeployAuthError,
    MrsDeployNotFoundError,
    MrsDeployServerError,
)
from airflow_provider.batch_set import BatchSet
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators.submission import reusable
from tests.faults.conftest import ConnSetter
from tests.faults.helpers import MT
from tests.faults.hostile import HostileServer, Misbehaviour


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


def run(path: str, hook: MrsDeployHook, sync_call: Callable[[], Any], async_call: Any) -> Any:
    """The sync or async form of a call; returns its result or the error it raised."""

    async def in_loop() -> Any:
        try:
            return await async_call()
        finally:
            await hook.aclose()

    try:
        return sync_call() if path == "sync" else asyncio.run(in_loop())
    except Exception as err:  # the error is the result under test
        return err


def calls(
    hook: MrsDeployHook,
) -> dict[str, tuple[Callable[[], Any], Callable[[], Coroutine[Any, Any, Any]]]]:
    return {
        "list-files": (
            lambda: hook.list_batch_files(*MT, "b1", 0),
            lambda: hook.alist_batch_files(*MT, "b1", 0),
        ),
        "cancel": (
            lambda: hook.cancel_batch(*MT, "b1"),
            lambda: hook.acancel_batch(*MT, "b1"),
        ),
        "status": (
            lambda: hook.get_batch_progress(*MT, "b1"),
            lambda: hook.aget_batch_progress(*MT, "b1"),
        ),
    }


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("call", ["list-files", "cancel", "status"])
@pytest.mark.parametrize("status", [404, 405, 410])
def test_a_missing_login_endpoint_is_an_auth_error(
    hostile: HostileServer, set_default_conn: ConnSetter, path: str, call: str, status: int
) -> None:
    hostile.script.routes["login"] = Misbehaviour(status=status)
    set_default_conn(hostile.port, "the-password")
    hook = MrsDeployHook()
    error = run(path, hook, *calls(hook)[call])
    assert isinstance(error, MrsDeployAuthError), error
    assert not isinstance(error, MrsDeployNotFoundError)
    assert f"login endpoint of http://127.0.0.1:{hostile.port} answered {status}" in str(error)
    assert "host, port and path prefix" in str(error)
    # Nothing but the login was tried: no cancel went out, no listing was guessed empty.
    assert {(seen.method, seen.path) for seen in hostile.script.seen} == {("POST", "/login")}


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_failing_login_is_a_server_error_retried_never_not_found(
    hostile: HostileServer, set_default_conn: ConnSetter, path: str
) -> None:
    hostile.script.routes["login"] = Misbehaviour(status=500)
    set_default_conn(hostile.port, "the-password", max_retries=2)
    hook = MrsDeployHook()
    error = run(path, hook, *calls(hook)["list-files"])
    assert isinstance(error, MrsDeployServerError), error
    assert hostile.script.count("login") == 3
    assert hostile.script.count("files") == 0


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize(
    "refresh",
    [
        Misbehaviour(status=404),
        Misbehaviour(status=500),
        Misbehaviour(status=502),
        Misbehaviour(hang=True),
        Misbehaviour(body={"access_token": "has a space", "expires_in": 60}),
    ],
    ids=["404", "500", "502", "no-answer", "not-a-token"],
)
def test_a_failing_refresh_falls_back_to_a_fresh_login(
    hostile: HostileServer,
    set_default_conn: ConnSetter,
    all_logs: Callable[[], str],
    path: str,
    refresh: Misbehaviour,
) -> None:
    hostile.script.routes["refresh"] = refresh
    hostile.script.expires_in = 2  # stale after 1 s (renewed at half its lifetime)
    set_default_conn(hostile.port, "the-password", timeout=1)
    hook = MrsDeployHook()
    list_files = calls(hook)["list-files"]
    assert run(path, hook, *list_files) == ["a.txt", "b.txt", "c.txt"]
    time.sleep(1.1)
    assert run(path, hook, *list_files) == ["a.txt", "b.txt", "c.txt"]
    assert hostile.script.count("refresh") == 1
    assert hostile.script.count("login") == 2
    assert "logging in again" in all_logs()


def test_durable_submit_never_takes_an_auth_failure_for_a_vanished_batch(
    hostile: HostileServer, set_default_conn: ConnSetter
) -> None:
    """A retry checking its recorded batches must fail on an auth error, not decide the batch
    is gone and start a second one (nor cancel the first)."""
    hostile.script.routes["login"] = Misbehaviour(status=404)
    set_default_conn(hostile.port, "the-password")
    recorded = BatchSet.of_row_counts(MT, [("b1", 3)], planned=1)
    with pytest.raises(MrsDeployAuthError):
        reusable(MrsDeployHook(), recorded, MT)
    assert hostile.script.count("cancel") == 0
