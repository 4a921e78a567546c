"""The trigger against the real reference server: one event per end state, none while running."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import pytest
import requests
from airflow.triggers.base import TriggerEvent

from airflow_provider.hooks import MrsDeployHook
from airflow_provider.triggers import MrsDeployBatchTrigger

SERVICE = ("mtService", "v1.0.0")
ROWS = [{"hp": 110, "wt": 2.62}, {"hp": 93, "wt": 2.32}, {"hp": 245, "wt": 3.84}]


def start_batch(rows: list[dict[str, Any]] = ROWS, parallel_count: int = 10) -> str:
    hook = MrsDeployHook()
    try:
        return hook.start_batch(*SERVICE, json.dumps(rows).encode(), parallel_count=parallel_count)
    finally:
        hook.close()


def make_trigger(batch_ids: list[str], **kwargs: Any) -> MrsDeployBatchTrigger:
    kwargs.setdefault("poll_interval", 0.2)
    return MrsDeployBatchTrigger(
        batch_ids=batch_ids, service_name=SERVICE[0], service_version=SERVICE[1], **kwargs
    )


async def first_event(trigger: MrsDeployBatchTrigger, timeout: float = 30) -> TriggerEvent:
    generator = trigger.run()
    try:
        return await asyncio.wait_for(generator.__anext__(), timeout)
    finally:
        await generator.aclose()


def test_serialize_round_trip_is_plain_json() -> None:
    trigger = make_trigger(["a", "b"], deadline=1234.5, max_poll_interval=30.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider.triggers.batch.MrsDeployBatchTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    again = MrsDeployBatchTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)


def test_complete_batch_yields_one_complete_event(mrsdeploy_conn: str) -> None:
    batch_id = start_batch()
    event = asyncio.run(first_event(make_trigger([batch_id])))
    assert event.payload == {
        "status": "complete",
        "batch_ids": [batch_id],
        "completed": 3,
        "total": 3,
        "message": "complete: 3/3 rows (100.0%)",
    }


def test_several_batches_complete_together(mrsdeploy_conn: str) -> None:
    ids = [start_batch(ROWS[:1]), start_batch(ROWS[1:])]
    event = asyncio.run(first_event(make_trigger(ids)))
    assert event.payload["status"] == "complete"
    assert (event.payload["completed"], event.payload["total"]) == (3, 3)


def test_failed_batch_yields_failed_event(mrsdeploy_conn: str, faults: Any) -> None:
    faults({"failNextBatches": 1, "batchFailureMessage": "no R session available"})
    batch_id = start_batch()
    event = asyncio.run(first_event(make_trigger([batch_id])))
    assert event.payload["status"] == "failed"
    assert batch_id in event.payload["message"]


def test_running_batch_yields_nothing_then_deadline_event(mrsdeploy_conn: str, faults: Any) -> None:
    faults({"rowDelaySeconds": 1.0})
    batch_id = start_batch(ROWS, parallel_count=1)

    async def scenario() -> TriggerEvent:
        still_running = make_trigger([batch_id])
        with pytest.raises(asyncio.TimeoutError):
            await first_event(still_running, timeout=0.8)
        return await first_event(make_trigger([batch_id], deadline=time.time() + 0.5))

    event = asyncio.run(scenario())
    assert event.payload["status"] == "timeout"
    assert event.payload["total"] == 3 and event.payload["completed"] < 3


def test_unknown_batch_yields_error_event(mrsdeploy_conn: str) -> None:
    event = asyncio.run(first_event(make_trigger(["00000000-0000-0000-0000-000000000000"])))
    assert event.payload["status"] == "error"
    assert "404" in event.payload["message"]


def test_on_kill_cancels_and_cleanup_does_not(mrsdeploy_conn: str, faults: Any) -> None:
    faults({"rowDelaySeconds": 1.0})
    kept, killed = start_batch(parallel_count=1), start_batch(parallel_count=1)

    async def scenario() -> None:
        await make_trigger([kept]).cleanup()
        await make_trigger([killed]).on_kill()

    asyncio.run(scenario())
    hook = MrsDeployHook()
    try:
        remaining = hook.list_batches(*SERVICE)
    finally:
        hook.close()
    assert kept in remaining and killed not in remaining


def test_transient_errors_do_not_end_the_wait(
    reference_server: Any, mrsdeploy_conn: str, faults: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = start_batch()
    # A connection that does not retry by itself, so every 503 reaches the trigger.
    connection = json.loads(os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"])
    connection["extra"] = {"max_retries": 0}
    monkeypatch.setenv("AIRFLOW_CONN_NO_RETRY", json.dumps(connection))
    faults({"httpErrors": [{"status": 503, "count": 3, "retryAfter": 0, "pathRegex": "/batch/"}]})
    trigger = make_trigger([batch_id], mrsdeploy_conn_id="no_retry", poll_interval=0.1)
    event = asyncio.run(first_event(trigger))
    assert event.payload["status"] == "complete"
    left = requests.get(
        f"{reference_server.url}/_faults", headers=reference_server.headers(), timeout=10
    ).json()
    assert left["httpErrors"][0]["count"] == 0  # all three 503s were served to the trigger


def test_definite_errors_are_not_transient() -> None:
    from airflow_provider.api import MrsDeployAuthError, MrsDeployConnectionError
    from airflow_provider.triggers.batch import is_transient_poll_error

    assert is_transient_poll_error(MrsDeployConnectionError("reset"))
    assert not is_transient_poll_error(MrsDeployConnectionError("tls", retryable=False))
    assert not is_transient_poll_error(MrsDeployAuthError("bad token", status_code=401))
