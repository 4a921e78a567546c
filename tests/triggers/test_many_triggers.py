"""Many triggers in one event loop, as a triggerer runs them, against the reference server."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from airflow_provider.api import BatchStatus
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.hooks.async_sessions import users_of
from airflow_provider.triggers import MrsDeployBatchTrigger
from airflow_provider.triggers import batch as batch_module
from tests.triggers.test_batch_trigger import first_event, make_trigger, start_batch


def recording_hooks(monkeypatch: pytest.MonkeyPatch) -> list[MrsDeployHook]:
    """Make every trigger's hook visible to the test."""
    built: list[MrsDeployHook] = []

    def build(self: MrsDeployBatchTrigger) -> MrsDeployHook:
        hook = MrsDeployHook(self.mrsdeploy_conn_id)
        built.append(hook)
        return hook

    monkeypatch.setattr(MrsDeployBatchTrigger, "_hook", build)
    return built


def test_triggers_share_one_session_closed_by_the_last(
    mrsdeploy_conn: str, faults: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults({"rowDelaySeconds": 0.5})
    batch_id = start_batch(parallel_count=1)
    hooks = recording_hooks(monkeypatch)

    async def scenario() -> list[Any]:
        events = asyncio.gather(*(first_event(make_trigger([batch_id])) for _ in range(30)))
        while len(hooks) < 30 or any(h._async_session is None for h in hooks):
            await asyncio.sleep(0.01)
        session = hooks[0]._async_session
        assert session is not None
        assert all(h._async_session is session for h in hooks)
        assert users_of(session) == 30
        done = await events
        assert session.closed and users_of(session) == 0
        return list(done)

    events = asyncio.run(scenario())
    assert {event.payload["status"] for event in events} == {"complete"}


def test_the_hook_is_built_on_the_loop_once_its_module_is_loaded(
    mrsdeploy_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_thread(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no thread hop once the hook module is imported")

    monkeypatch.setattr(batch_module.asyncio, "to_thread", no_thread)
    event = asyncio.run(first_event(make_trigger(["00000000-0000-0000-0000-000000000000"])))
    assert event.payload["status"] == "error"


def test_nothing_of_a_poll_is_held_while_the_trigger_sleeps(
    mrsdeploy_conn: str, faults: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults({"rowDelaySeconds": 2.0})
    batch_id = start_batch(parallel_count=1)
    polled = asyncio.Event()
    original = MrsDeployHook.aget_batch_progress

    async def noting(self: MrsDeployHook, *args: Any, **kwargs: Any) -> BatchStatus:
        status = await original(self, *args, **kwargs)
        polled.set()
        return status

    monkeypatch.setattr(MrsDeployHook, "aget_batch_progress", noting)

    async def scenario() -> int:
        trigger = make_trigger([batch_id], poll_interval=30.0)
        task = asyncio.create_task(first_event(trigger, timeout=60))
        await asyncio.wait_for(polled.wait(), 30)
        await asyncio.sleep(0.1)  # the trigger is asleep until its next poll
        gc.collect()
        # ``type`` rather than ``isinstance``: the latter reads ``__class__``, which some lazy
        # objects in the heap answer by importing modules.
        alive = sum(1 for obj in gc.get_objects() if type(obj) is BatchStatus)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return alive

    assert asyncio.run(scenario()) == 0
