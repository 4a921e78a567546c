"""The sensor: poke, defer only when not done, and act on trigger events.

Its ``batch_id`` is the Submit task's batch set (which names its service), or plain ids with
``service_name`` and ``service_version``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider.api import MrsDeployError
from airflow_provider.batch_set import BatchSet, MrsDeployBatchSetError
from airflow_provider.compat import TaskDeferred
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.sensors import MrsDeployBatchSensor
from airflow_provider.triggers import MrsDeployBatchTrigger
from airflow_provider.waiting.events import BatchEvent, BatchEventStatus
from airflow_provider.waiting.tasks import MrsDeployBatchFailedError, wait_until_done
from tests.faults.helpers import run_trigger, submit

SERVICE = ("mtService", "v1.0.0")

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
        ref = BatchSet.of_ids(SERVICE, [batch_id])
        wait_until_done(hook, ref, poll_interval=0.1, deadline=None, cancel_on_timeout=False)
    finally:
        hook.close()


def sensor(batch_id: Any, **kwargs: Any) -> MrsDeployBatchSensor:
    """A sensor on plain ids of ``mtService`` (their service is passed along)."""
    kwargs.setdefault("service_name", SERVICE[0])
    kwargs.setdefault("service_version", SERVICE[1])
    return MrsDeployBatchSensor(task_id="wait", batch_id=batch_id, **kwargs)


def submitted(context: Any, rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Run a Submit task; return what it returned (``submit.output``: the batch set JSON)."""
    return submit(context, rows, SERVICE, **kwargs)


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
    assert kwargs["batch_set"] == BatchSet.of_ids(SERVICE, [batch_id]).to_json()
    assert trigger.batch_ids == (batch_id,) and kwargs["poll_interval"] == 3.0
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


def test_the_submit_tasks_batch_set_alone_is_enough_to_wait(
    mrsdeploy_conn: str, task_context: Any, faults: Any
) -> None:
    """``batch_id=submit.output`` and nothing else: the set names its service, the deferred
    wait carries what it polls (service and ids), and the resumed sensor has the set whole
    from its own ``batch_id``."""
    faults({"rowDelaySeconds": 0.3})
    output = submitted(task_context, ROWS * 2, parallel_count=1, max_records_per_batch=3)
    batch_set = BatchSet.from_json(output)
    assert [(p.first_row, p.row_count) for p in batch_set.parts] == [(0, 3), (3, 1)]
    task_context["ti"].store.clear()  # nothing to read from the upstream task's XCom
    waiting = MrsDeployBatchSensor(task_id="wait", batch_id=output, deferrable=True, timeout=120)
    assert waiting.service_name is None and waiting.service_version is None
    try:
        with pytest.raises(TaskDeferred) as deferred:
            waiting.execute(task_context)
    finally:
        waiting.hook.close()
    trigger = deferred.value.trigger
    assert isinstance(trigger, MrsDeployBatchTrigger)
    assert trigger.serialize()[1]["batch_set"] == batch_set.for_polling().to_json()
    payload = json.loads(json.dumps(run_trigger(trigger)))
    event = BatchEvent.from_payload(payload)
    assert event.status is BatchEventStatus.COMPLETE
    assert event.batch_ids == batch_set.batch_ids and event.batch_set is None
    assert (event.completed, event.total) == (4, 4)
    resumed = MrsDeployBatchSensor(task_id="wait", batch_id=output, deferrable=True)
    try:
        resumed.execute_complete(task_context, payload)  # complete: returns, raises nothing
        assert resumed.batch_ref(task_context) == batch_set
    finally:
        resumed.hook.close()
    # Poking, and from the text a template renders the set to, works the same way.
    for given in (output, json.dumps(output), str(output)):
        poking = MrsDeployBatchSensor(task_id="poke", batch_id=given)
        try:
            assert poking.poke(task_context) is True
            assert poking.batch_ref(task_context) == batch_set
        finally:
            poking.hook.close()


def test_a_plain_id_without_its_service_is_refused_naming_submit_output(
    task_context: Any,
) -> None:
    """The service is no longer read from the upstream task's XCom: a plain id must come with
    its service, whatever that XCom holds."""
    task_context["ti"].store[("submit", "service_name")] = "mtService"
    task_context["ti"].store[("submit", "service_version")] = "v1.0.0"
    for given in ("abc", ["abc", "def"], '["abc"]'):
        op = MrsDeployBatchSensor(task_id="wait", batch_id=given)
        with pytest.raises(MrsDeployBatchSetError, match=r"names no service.*submit\.output"):
            op.poke(task_context)
    only_name = MrsDeployBatchSensor(task_id="wait", batch_id="abc", service_name="mtService")
    with pytest.raises(MrsDeployBatchSetError, match=r"submit\.output"):
        only_name.poke(task_context)
    assert sensor("abc").batch_ref(task_context) == BatchSet.of_ids(SERVICE, ["abc"])


def test_a_service_that_contradicts_the_batch_set_is_refused(task_context: Any) -> None:
    batch_set = BatchSet.of_ids(SERVICE, ["abc"]).to_json()
    op = sensor(batch_set, service_name="echoService")
    with pytest.raises(MrsDeployError, match=r"scored by mtService v1\.0\.0, not echoService"):
        op.poke(task_context)
    assert sensor(batch_set).batch_ref(task_context) == BatchSet.from_json(batch_set)


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
