"""What ``on_kill`` does with the batches, by the state the task is in when Airflow calls it.

Airflow 3.3 calls a trigger's ``on_kill`` when a user acts on the deferred task, and also when
a triggerer whose heartbeat went stale (a database failover, a paused machine) loses the
trigger to another triggerer: the task is then still deferred, and the other triggerer polls
the same batches, which a cancel would delete. The state comes from the triggerer's channel to
its supervisor; a stand-in for that channel answers here (a takeover cannot be produced on
demand by a real triggerer), the batches are real ones on the reference server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.execution_time import task_runner
from airflow.sdk.execution_time.comms import GetTaskStates, TaskStatesResult

from airflow_provider.hooks import MrsDeployHook
from airflow_provider.triggers import batch as trigger_module
from airflow_provider.waiting import task_state
from tests.triggers.test_batch_trigger import SERVICE, make_trigger, start_batch

TASK = SimpleNamespace(dag_id="d", task_id="wait", run_id="r1", map_index=-1)


class Channel:
    """Answers ``GetTaskStates`` with ``state`` for the task (or never, when ``hang``)."""

    def __init__(self, state: str | None, hang: bool = False) -> None:
        self.state, self.hang = state, hang
        self.asked: list[GetTaskStates] = []

    async def asend(self, message: Any) -> TaskStatesResult | None:
        if not isinstance(message, GetTaskStates):
            return None  # what else a trigger's code may tell the supervisor (secrets to mask)
        self.asked.append(message)
        if self.hang:
            await asyncio.sleep(3600)
        return TaskStatesResult(task_states={"r1": {"wait": self.state}})

    def send(self, message: Any) -> None:
        """Messages sent without waiting (secrets to mask) need no answer here."""


@pytest.fixture
def channel(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def install(state: str | None, hang: bool = False) -> Channel:
        found = Channel(state, hang)
        monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", found, raising=False)
        return found

    yield install


def remaining() -> list[str]:
    hook = MrsDeployHook()
    try:
        return list(hook.list_batches(*SERVICE))
    finally:
        hook.close()


def kill(batch_ids: list[str]) -> None:
    trigger = make_trigger(batch_ids)
    trigger.task_instance = TASK  # type: ignore[assignment]
    asyncio.run(trigger.on_kill())


@pytest.mark.parametrize("state", ["deferred", "success"])
def test_a_task_still_deferred_or_marked_successful_keeps_its_batches(
    mrsdeploy_conn: str, faults: Any, channel: Any, state: str
) -> None:
    faults({"rowDelaySeconds": 1.0})
    batch_id = start_batch(parallel_count=1)
    asked = channel(state)
    kill([batch_id])
    assert batch_id in remaining()
    assert [(m.dag_id, m.task_ids, m.run_ids, m.map_index) for m in asked.asked] == [
        ("d", ["wait"], ["r1"], -1)
    ]


@pytest.mark.parametrize("state", ["failed", None, "up_for_retry"])
def test_a_task_a_user_failed_or_cleared_has_its_batches_cancelled(
    mrsdeploy_conn: str, faults: Any, channel: Any, state: str | None
) -> None:
    faults({"rowDelaySeconds": 1.0})
    batch_id = start_batch(parallel_count=1)
    channel(state)
    kill([batch_id])
    assert batch_id not in remaining()


def test_when_the_state_cannot_be_asked_the_batches_are_cancelled_in_time(
    mrsdeploy_conn: str, faults: Any, channel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A channel that never answers: the question gives up, and the kill goes on."""
    faults({"rowDelaySeconds": 1.0})
    monkeypatch.setattr(task_state, "ASK_SECONDS", 0.3)
    batch_id = start_batch(parallel_count=1)
    channel("deferred", hang=True)
    kill([batch_id])
    assert batch_id not in remaining()


def test_one_slow_cancel_does_not_stop_the_others(
    reference_server: Any,
    mrsdeploy_conn: str,
    faults: Any,
    channel: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cancels ran one after another with the connection's whole retry policy: one DELETE
    answered 503 with Retry-After used Airflow's on_kill time, and no batch was cancelled."""
    channel("failed")
    monkeypatch.setattr(trigger_module, "CANCEL_SECONDS", 1.0)
    batch_ids = [start_batch(parallel_count=1) for _ in range(3)]
    slow = batch_ids[0]
    faults(
        {
            "rowDelaySeconds": 1.0,
            "httpErrors": [
                {"status": 503, "count": 50, "retryAfter": 5, "pathRegex": f"/batch/{slow}$"}
            ],
        }
    )
    started = time.monotonic()
    kill(batch_ids)
    assert time.monotonic() - started < 4  # bounded, not the 5 s Retry-After times retries
    faults({})
    left = remaining()
    assert slow in left and not set(batch_ids[1:]) & set(left)
    json.dumps(left)  # the listing is plain
