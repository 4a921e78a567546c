"""The trigger against the real reference server: one event per end state, none while running.

It waits on a batch set (``batch_set=``); triggers stored by earlier releases are re-created
from ``batch_ids``, ``service_name`` and ``service_version``, and must still work.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from typing import Any

import pytest
import requests
from airflow.triggers.base import TriggerEvent

from airflow_provider.batch_set import BatchSet
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.triggers import MrsDeployBatchTrigger
from airflow_provider.waiting.events import BatchEvent, BatchEventStatus

SERVICE = ("mtService", "v1.0.0")
ROWS = [{"hp": 110, "wt": 2.62}, {"hp": 93, "wt": 2.32}, {"hp": 245, "wt": 3.84}]


def start_batch(rows: list[dict[str, Any]] = ROWS, parallel_count: int = 10) -> str:
    hook = MrsDeployHook()
    try:
        return hook.start_batch(*SERVICE, json.dumps(rows).encode(), parallel_count=parallel_count)
    finally:
        hook.close()


def make_trigger(batch_ids: list[str], **kwargs: Any) -> MrsDeployBatchTrigger:
    """A trigger on plain ids, given as the tasks give it: a batch set (its JSON form)."""
    kwargs.setdefault("poll_interval", 0.2)
    return MrsDeployBatchTrigger(batch_set=BatchSet.of_ids(SERVICE, batch_ids).to_json(), **kwargs)


async def first_event(trigger: MrsDeployBatchTrigger, timeout: float = 30) -> TriggerEvent:
    generator = trigger.run()
    try:
        return await asyncio.wait_for(generator.__anext__(), timeout)
    finally:
        await generator.aclose()


def test_serialize_round_trip_is_plain_json() -> None:
    batch_set = BatchSet.of_row_counts(SERVICE, [("a", 16), ("b", 3)], 2)
    trigger = MrsDeployBatchTrigger(
        batch_set=batch_set, deadline=1234.5, max_poll_interval=30.0, poll_interval=0.2
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider.triggers.batch.MrsDeployBatchTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert set(kwargs) == {
        "batch_set",
        "mrsdeploy_conn_id",
        "poll_interval",
        "deadline",
        "max_poll_interval",
        "cancel_on_kill",
    }
    # Only what it polls: the resumed task has the rest from its XCom.
    assert kwargs["batch_set"] == {
        "kind": "mrsdeploy_batch_set",
        "version": 1,
        "service_name": SERVICE[0],
        "service_version": SERVICE[1],
        "batches": [
            {"batch_id": "a", "first_row": None, "row_count": None},
            {"batch_id": "b", "first_row": None, "row_count": None},
        ],
        "planned_batches": 2,
    }
    again = MrsDeployBatchTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert again.batch_set == batch_set.for_polling()
    assert (again.batch_ids, again.service_name, again.service_version) == (("a", "b"), *SERVICE)


def test_a_repair_of_many_rows_fits_the_smallest_trigger_column() -> None:
    """A repair's row maps stay out of the trigger's kwargs, which MySQL stores in 64 KB."""
    rows = range(0, 2_000_000, 7)  # 285,715 failed rows
    repair = BatchSet.of_row_maps(SERVICE, [("r1", rows[:150_000]), ("r2", rows[150_000:])], 2)
    fingerprinted = BatchSet.of_row_counts(SERVICE, [("a", 16)], 1)
    fingerprinted = BatchSet(*SERVICE, fingerprinted.parts, 1, "0" * 64)
    for batch_set in (repair, fingerprinted):
        _, kwargs = MrsDeployBatchTrigger(batch_set=batch_set).serialize()
        assert len(json.dumps(kwargs)) < 1000, kwargs
        assert kwargs["batch_set"] == batch_set.for_polling().to_json()
        assert "rows" not in json.dumps(kwargs) and "0" * 64 not in json.dumps(kwargs)
    # Arguments that cannot be used are handed back for the trigger to report: the set too is
    # reduced to what it polls.
    unusable = MrsDeployBatchTrigger(batch_set=repair, poll_interval=math.nan)
    assert unusable.problem is not None
    assert unusable.serialize()[1]["batch_set"] == repair.for_polling().to_json()


def test_kwargs_of_an_earlier_release_are_read_as_a_batch_set() -> None:
    earlier: dict[str, Any] = {
        "batch_ids": ["a", "b"],
        "service_name": SERVICE[0],
        "service_version": SERVICE[1],
        "mrsdeploy_conn_id": "mrsdeploy_default",
        "poll_interval": 0.2,
        "deadline": None,
        "max_poll_interval": None,
        "cancel_on_kill": True,
    }
    trigger = MrsDeployBatchTrigger(**earlier)
    assert trigger.batch_set == BatchSet.of_ids(SERVICE, ["a", "b"])
    assert (trigger.batch_ids, trigger.service_name, trigger.service_version) == (
        ("a", "b"),
        *SERVICE,
    )
    # Serialized again in today's form.
    _, kwargs = trigger.serialize()
    assert kwargs["batch_set"] == BatchSet.of_ids(SERVICE, ["a", "b"]).to_json()
    assert not {"batch_ids", "service_name", "service_version"} & set(kwargs)
    # Half of the earlier form cannot be used: reported when the trigger runs, never raised
    # while the triggerer re-creates it.
    unusable = MrsDeployBatchTrigger(batch_ids=["a"], service_name=SERVICE[0])
    assert unusable.problem is not None and "pass batch_set" in unusable.problem


def test_complete_batch_yields_one_complete_event(mrsdeploy_conn: str) -> None:
    batch_id = start_batch()
    batch_set = BatchSet.of_row_counts(SERVICE, [(batch_id, 3)], 1)
    trigger = MrsDeployBatchTrigger(batch_set=batch_set.to_json(), poll_interval=0.2)
    event = asyncio.run(first_event(trigger))
    assert event.payload == {
        "status": "complete",
        "batch_ids": [batch_id],
        "completed": 3,
        "total": 3,
        "message": "complete: 3/3 rows (100.0%)",
        # The service and ids: the task that resumes has the set from its XCom (see
        # BatchEvent.batch_set).
        "service_name": SERVICE[0],
        "service_version": SERVICE[1],
    }
    assert json.loads(json.dumps(event.payload)) == event.payload


def test_a_trigger_of_an_earlier_release_still_polls_and_reports_the_batch_set(
    mrsdeploy_conn: str,
) -> None:
    """A triggerer restarted after the upgrade re-creates a wait deferred before it from the
    kwargs the earlier release stored: it polls as before, and its event names the batches."""
    ids = [start_batch(ROWS[:2]), start_batch(ROWS[2:])]
    earlier: dict[str, Any] = {
        "batch_ids": ids,
        "service_name": SERVICE[0],
        "service_version": SERVICE[1],
        "mrsdeploy_conn_id": "mrsdeploy_default",
        "poll_interval": 0.2,
        "deadline": time.time() + 60,
        "max_poll_interval": None,
        "cancel_on_kill": True,
    }
    event = asyncio.run(first_event(MrsDeployBatchTrigger(**json.loads(json.dumps(earlier)))))
    payload = json.loads(json.dumps(event.payload))
    assert payload["status"] == "complete" and payload["batch_ids"] == ids
    assert (payload["completed"], payload["total"]) == (3, 3)
    assert "batch_set" not in payload
    parsed = BatchEvent.from_payload(payload)
    assert parsed.status is BatchEventStatus.COMPLETE and parsed.batch_ids == tuple(ids)


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
    assert "batch_set" not in event.payload


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
    assert "batch_set" not in event.payload


def test_unknown_batch_yields_error_event(mrsdeploy_conn: str) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    event = asyncio.run(first_event(make_trigger([unknown])))
    assert event.payload["status"] == "error"
    assert "404" in event.payload["message"]
    assert "batch_set" not in event.payload


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
    from airflow_provider.waiting.progress import is_transient_poll_error

    assert is_transient_poll_error(MrsDeployConnectionError("reset"))
    assert not is_transient_poll_error(MrsDeployConnectionError("tls", retryable=False))
    assert not is_transient_poll_error(MrsDeployAuthError("bad token", status_code=401))
