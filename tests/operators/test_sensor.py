"""The sensor: poke, defer only when not done, and act on trigger events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider.api import MrsDeployError
from airflow_provider.batch_ref import BatchRef
from airflow_provider.compat import TaskDeferred
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.sensors import MrsDeployBatchSensor
from airflow_provider.triggers import MrsDeployBatchTrigger
from airflow_provider.waiting import MrsDeployBatchFailedError, wait_until_done

ROWS = [{"hp": 110, "wt": 2.62}, {"hp": 93, "wt": 2.32}]


def start(rows: list[dict[str, Any]] = ROWS, parallel_count: int = 10) -> str:
    hook = MrsDeployHook()
    try:
        return hook.start_batch(
            "mtService", "v1.0.0", json.dumps(rows).encode(), parallel_count=parallel_count
        )
    finally:
        hook.close()


def finish(batch_id: str) -> None:
    """Wait (from the test) until the batch is complete; raises if it failed."""
    hook = MrsDeployHook()
    try:
        ref = BatchRef("mtService", "v1.0.0", (batch_id,))
        wait_until_done(hook, ref, poll_interval=0.1, deadline=None, cancel_on_timeout=False)
    finally:
        hook.close()


def sensor(batch_id: Any, **kwargs: Any) -> MrsDeployBatchSensor:
    kwargs.setdefault("service_name", "mtService")
    kwargs.setdefault("service_version", "v1.0.0")
    return MrsDeployBatchSensor(task_id="wait", batch_id=batch_id, **kwargs)


def test_already_complete_batch_does_not_defer(mrsdeploy_conn: str, task_context: Any) -> None:
    batch_id = start()
    finish(batch_id)
    assert sensor(batch_id, deferrable=True).execute(task_context) is None


def test_running_batch_defers_with_deadline(
    mrsdeploy_conn: str, task_context: Any, faults: Any
) -> None:
    faults({"rowDelaySeconds": 1.0})
    batch_id = start(parallel_count=1)
    with pytest.raises(TaskDeferred) as deferred:
        sensor(batch_id, deferrable=True, timeout=120, poke_interval=3).execute(task_context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, MrsDeployBatchTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["batch_ids"] == [batch_id] and kwargs["poll_interval"] == 3.0
    assert kwargs["deadline"] is not None


def test_poke_reports_failed_batch(mrsdeploy_conn: str, task_context: Any, faults: Any) -> None:
    faults({"failNextBatches": 1})
    batch_id = start()
    op = sensor(batch_id, deferrable=False)
    with pytest.raises(MrsDeployBatchFailedError, match="Failed"):
        finish(batch_id)
    with pytest.raises(MrsDeployBatchFailedError):
        op.poke(task_context)


def test_execute_complete_validates_the_event(mrsdeploy_conn: str, task_context: Any) -> None:
    op = sensor("some-id")
    with pytest.raises(MrsDeployError, match="unknown status"):
        op.execute_complete(task_context, {"status": "bogus", "batch_ids": ["some-id"]})
    with pytest.raises(MrsDeployError, match="waiting failed: boom"):
        op.execute_complete(
            task_context, {"status": "error", "batch_ids": ["some-id"], "message": "boom"}
        )
    op.execute_complete(task_context, {"status": "complete", "batch_ids": ["some-id"]})


def test_service_is_read_from_the_submit_tasks_xcom(task_context: Any) -> None:
    from airflow_provider.batch_ref import resolve_batch_ref

    task_context["ti"].store[("submit", "service_name")] = "mtService"
    task_context["ti"].store[("submit", "service_version")] = "v1.0.0"
    ref = resolve_batch_ref(task_context, "abc", None, None, "submit")
    assert ref == BatchRef("mtService", "v1.0.0", ("abc",))
    with pytest.raises(MrsDeployError, match="pass service_name"):
        resolve_batch_ref(task_context, "abc", None, None, None)


def test_poke_mode_timeout_cancels_the_batch(
    mrsdeploy_conn: str, task_context: Any, faults: Any
) -> None:
    from airflow_provider.compat import AirflowSensorTimeout

    faults({"rowDelaySeconds": 1.0})
    batch_id = start(parallel_count=1)
    op = sensor(batch_id, deferrable=False, mode="poke", poke_interval=0.2, timeout=0.5)
    with pytest.raises(AirflowSensorTimeout):
        op.execute(task_context)
    hook = MrsDeployHook()
    try:
        assert batch_id not in hook.list_batches("mtService", "v1.0.0")
    finally:
        hook.close()


def test_poke_rides_out_a_transient_outage(
    reference_server: Any,
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    batch_id = start()
    connection = json.loads(os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"])
    connection["extra"] = {"max_retries": 0}
    monkeypatch.setenv("AIRFLOW_CONN_NO_RETRY", json.dumps(connection))
    op = sensor(batch_id, mrsdeploy_conn_id="no_retry")
    faults({"httpErrors": [{"status": 503, "count": 1, "retryAfter": 0, "pathRegex": "/batch/"}]})
    assert op.poke(task_context) is False  # the 503 is logged, not raised
    finish(batch_id)
    assert op.poke(task_context) is True
