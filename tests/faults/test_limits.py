"""Size limits: a server sending endless or oversized bodies gets a clear error, not the
worker's memory."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import pytest

from airflow_provider.hooks import MrsDeployHook, MrsDeployResponseTooLargeError
from tests.faults.conftest import ConnSetter
from tests.faults.helpers import ECHO, echo_rows
from tests.faults.misbehaving import MisbehavingServer
from tests.hooks.helpers import wait_terminal
from tests.support.server import ReferenceServer

MIB = 1024 * 1024


@pytest.fixture
def misbehaving() -> Iterator[MisbehavingServer]:
    with MisbehavingServer() as server:
        yield server


@pytest.fixture
def hook_on(set_default_conn: ConnSetter) -> Iterator[Callable[..., MrsDeployHook]]:
    hooks: list[MrsDeployHook] = []

    def make(port: int, password: str = "pw", **extra: object) -> MrsDeployHook:
        set_default_conn(port, password, **extra)
        hook = MrsDeployHook()
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()


def test_endless_json_body_stops_at_the_limit(
    misbehaving: MisbehavingServer, hook_on: Callable[..., MrsDeployHook]
) -> None:
    misbehaving.script.mode = "endless"
    hook = hook_on(misbehaving.port, max_response_bytes=MIB)
    with pytest.raises(MrsDeployResponseTooLargeError, match="max_response_bytes") as info:
        hook.list_services()
    assert info.value.limit == MIB
    assert "GET /services" in str(info.value)
    assert len(misbehaving.script.requests) == 1  # not retried: the answer would not change


def test_endless_json_body_stops_at_the_limit_on_the_async_path(
    misbehaving: MisbehavingServer, hook_on: Callable[..., MrsDeployHook]
) -> None:
    misbehaving.script.mode = "endless"
    hook = hook_on(misbehaving.port, max_response_bytes=MIB)

    async def poll() -> None:
        try:
            await hook.aget_batch_status(*ECHO, "some-batch")
        finally:
            await hook.aclose()

    with pytest.raises(MrsDeployResponseTooLargeError, match="max_response_bytes"):
        asyncio.run(poll())
    assert len(misbehaving.script.requests) == 1


def test_announced_oversize_fails_before_reading(
    misbehaving: MisbehavingServer, hook_on: Callable[..., MrsDeployHook]
) -> None:
    misbehaving.script.mode = "huge"  # Content-Length of 50 GiB
    hook = hook_on(misbehaving.port)  # default limit, 256 MiB
    with pytest.raises(MrsDeployResponseTooLargeError, match=str(256 * MIB)):
        hook.list_services()


def test_endless_file_download_stops_at_max_download_bytes(
    misbehaving: MisbehavingServer, hook_on: Callable[..., MrsDeployHook]
) -> None:
    misbehaving.script.mode = "endless"
    hook = hook_on(misbehaving.port, max_download_bytes=2 * MIB)
    received = 0
    with pytest.raises(MrsDeployResponseTooLargeError, match="max_download_bytes"):
        for chunk in hook.iter_batch_file(*ECHO, "b", 0, "echo.txt"):
            received += len(chunk)
    assert received <= 2 * MIB  # nothing beyond the limit reached the consumer


def test_limits_apply_to_real_answers_too(
    reference_server: ReferenceServer, hook_on: Callable[..., MrsDeployHook]
) -> None:
    """Against the reference server: a 2 KB limit lets the login through, not the service list,
    and ``get_batch_file`` (in memory) refuses a 100 KB file that ``iter_batch_file`` streams."""
    hook = hook_on(reference_server.port, reference_server.admin_password)
    batch_id = hook.start_batch(*ECHO, json.dumps(echo_rows(1, 1000, 100)).encode())
    wait_terminal(hook, ECHO, batch_id)
    small = hook_on(reference_server.port, reference_server.admin_password, max_response_bytes=2000)
    with pytest.raises(MrsDeployResponseTooLargeError, match="GET /services"):
        small.list_services()
    with pytest.raises(MrsDeployResponseTooLargeError, match=r"echo\.txt"):
        small.get_batch_file(*ECHO, batch_id, 0, "echo.txt")
    streamed = b"".join(small.iter_batch_file(*ECHO, batch_id, 0, "echo.txt"))
    assert len(streamed) > 100_000
    hook.cancel_batch(*ECHO, batch_id)
