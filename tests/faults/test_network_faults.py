"""Dropped connections, slow answers and lost responses, through the fault proxy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import pytest

from airflow_provider.api import MrsDeployConnectionError
from airflow_provider.hooks import MrsDeployHook
from tests.faults.conftest import ConnSetter
from tests.faults.helpers import CARS, MT, batch_trigger, run_trigger
from tests.faults.proxy import FaultProxy
from tests.hooks.helpers import wait_terminal
from tests.support.server import ReferenceServer

STATUS_PATH = r"/batch/[0-9a-f-]+\?"


@pytest.fixture
def make_hook(
    proxy: FaultProxy, reference_server: ReferenceServer, set_default_conn: ConnSetter
) -> Iterator[Callable[..., MrsDeployHook]]:
    hooks: list[MrsDeployHook] = []

    def make(**extra: object) -> MrsDeployHook:
        set_default_conn(proxy.port, reference_server.admin_password, **extra)
        hook = MrsDeployHook()
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()


def test_dropped_connections_are_retried(
    proxy: FaultProxy, make_hook: Callable[..., MrsDeployHook], all_logs: Callable[[], str]
) -> None:
    hook = make_hook()
    proxy.drop_connections(times=2)
    assert hook.get_service(*MT).name == MT[0]
    assert proxy.stats.dropped == 2
    retries = [line for line in all_logs().splitlines() if "retrying in" in line]
    assert len(retries) == 2 and all("POST /login" in line for line in retries), retries


def test_a_slow_answer_times_out_and_is_retried(
    proxy: FaultProxy, make_hook: Callable[..., MrsDeployHook], all_logs: Callable[[], str]
) -> None:
    hook = make_hook(timeout=0.5)
    batch_id = hook.start_batch(*MT, json.dumps(CARS).encode())
    proxy.delay(2.0, times=1, path_regex=STATUS_PATH)
    assert hook.get_batch_status(*MT, batch_id).total_item_count == len(CARS)
    assert proxy.stats.delayed == 1
    retried = [line for line in all_logs().splitlines() if "retrying in" in line]
    assert len(retried) == 1 and "no complete answer" in retried[0] and "within 0.5 s" in retried[0]


def test_lost_answer_to_submit_is_not_resent(
    proxy: FaultProxy,
    make_hook: Callable[..., MrsDeployHook],
    reference_server: ReferenceServer,
) -> None:
    """The server started the batch but its answer was cut: resending could start a second
    batch, so the hook fails clearly instead, and exactly one batch exists."""
    hook = make_hook()
    before = set(hook.list_batches(*MT))
    proxy.reset_after(0, times=1, path_regex=r"/batch\?parallelCount")
    with pytest.raises(MrsDeployConnectionError) as info:
        hook.start_batch(*MT, json.dumps(CARS).encode())
    assert info.value.may_have_been_sent and info.value.path == "/api/mtService/v1.0.0/batch"
    assert proxy.stats.resets == 1
    created = set(hook.list_batches(*MT)) - before
    assert len(created) == 1  # the server did start it; nothing started it twice
    wait_terminal(hook, MT, created.pop())


def test_connection_cut_before_submit_reached_the_server_starts_at_most_one_batch(
    proxy: FaultProxy, make_hook: Callable[..., MrsDeployHook]
) -> None:
    """The proxy accepts the connection and resets it before forwarding anything. Depending on
    whether the reset lands before or after the client wrote its request, the client sees
    "could not connect" (safe: resent, one batch) or "connection aborted" (the server may have
    seen it: not resent, the task fails, no batch). Never two batches.
    """
    hook = make_hook()
    before = set(hook.list_batches(*MT))  # logged in
    hook.close()  # the next request opens a new connection, which the proxy cuts
    proxy.drop_connections(times=1)
    expected: set[str] = set()
    try:
        expected.add(hook.start_batch(*MT, json.dumps(CARS).encode()))
    except MrsDeployConnectionError as err:
        assert err.may_have_been_sent and "Connection aborted" in str(err)
    assert proxy.stats.dropped == 1
    assert set(hook.list_batches(*MT)) - before == expected


def test_trigger_polls_through_dropped_and_reset_connections(
    proxy: FaultProxy,
    make_hook: Callable[..., MrsDeployHook],
    all_logs: Callable[[], str],
) -> None:
    hook = make_hook(max_retries=0)
    batch_id = hook.start_batch(*MT, json.dumps(CARS).encode())
    wait_terminal(hook, MT, batch_id)
    proxy.reset_after(10, times=3, path_regex=STATUS_PATH)
    payload = run_trigger(batch_trigger([batch_id]))
    assert payload["status"] == "complete" and payload["completed"] == len(CARS)
    assert proxy.stats.resets == 3
    # Every reset reaches the trigger (nothing resends behind it): each is logged and polled
    # again, never a failed task.
    assert all_logs().count("Polling batch status failed, will poll again") == 3


def test_async_hook_retries_a_reset_connection(
    proxy: FaultProxy, make_hook: Callable[..., MrsDeployHook], all_logs: Callable[[], str]
) -> None:
    hook = make_hook()
    batch_id = hook.start_batch(*MT, json.dumps(CARS).encode())
    wait_terminal(hook, MT, batch_id)
    proxy.reset_after(10, times=2, path_regex=STATUS_PATH)

    async def poll() -> int:
        try:
            return (await hook.aget_batch_status(*MT, batch_id)).completed_item_count
        finally:
            await hook.aclose()

    assert asyncio.run(poll()) == len(CARS)
    assert proxy.stats.resets == 2
    assert sum("retrying in" in line for line in all_logs().splitlines()) >= 1


@pytest.mark.parametrize("path", ["blocking", "event-loop"])
def test_a_connection_reset_every_time_costs_exactly_the_configured_attempts(
    path: str,
    proxy: FaultProxy,
    make_hook: Callable[..., MrsDeployHook],
    all_logs: Callable[[], str],
) -> None:
    """``max_retries=2`` means three requests, on both paths: the event loop's HTTP client
    would otherwise resend an idempotent request once more, unlogged, whenever a kept-alive
    connection drops, so a server resetting every answer got twice the attempts."""
    hook = make_hook(max_retries=2)
    batch_id = hook.start_batch(*MT, json.dumps(CARS).encode())
    wait_terminal(hook, MT, batch_id)
    proxy.reset_after(10, times=None, path_regex=STATUS_PATH)

    async def poll() -> None:
        try:
            await hook.aget_batch_status(*MT, batch_id)
        finally:
            await hook.aclose()

    with pytest.raises(MrsDeployConnectionError):
        if path == "blocking":
            hook.get_batch_status(*MT, batch_id)
        else:
            asyncio.run(poll())
    assert proxy.stats.resets == 3
    assert sum("retrying in" in line for line in all_logs().splitlines()) == 2
