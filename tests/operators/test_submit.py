"""Submit against the real reference server: validation, XCom, deferral and waiting.

The task's return value (and its XCom ``batch_set``) is the batch set: the service, and which
batch holds which rows of the input.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from airflow_provider.api import MrsDeployError
from airflow_provider.batch_set import BatchSet
from airflow_provider.compat import TaskDeferred
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import MrsDeploySubmitBatchOperator
from airflow_provider.records import MrsDeployRecordsError
from airflow_provider.sample_data import mtcars_csv_path
from airflow_provider.triggers import MrsDeployBatchTrigger
from airflow_provider.waiting.tasks import MrsDeployBatchFailedError, MrsDeployBatchTimeoutError
from tests.faults.helpers import run_trigger


def submit(records: Any, **kwargs: Any) -> MrsDeploySubmitBatchOperator:
    return MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name=kwargs.pop("service_name", "mtService"),
        service_version="v1.0.0",
        records=records,
        **kwargs,
    )


def batches_on_server() -> list[str]:
    hook = MrsDeployHook()
    try:
        return hook.list_batches("mtService", "v1.0.0")
    finally:
        hook.close()


def rows_of(batch_set: BatchSet) -> list[tuple[int | None, int | None]]:
    """Each batch's ``(first_row, row_count)``, in input order."""
    return [(part.first_row, part.row_count) for part in batch_set.parts]


def test_submit_csv_returns_and_pushes_the_batch_set(
    reference_server: Any, mrsdeploy_conn: str, task_context: Any
) -> None:
    returned = submit(mtcars_csv_path(), deferrable=False).execute(task_context)
    assert json.loads(json.dumps(returned)) == returned  # plain JSON, as XCom stores it
    batch_set = BatchSet.from_json(returned)
    assert (batch_set.service_name, batch_set.service_version) == ("mtService", "v1.0.0")
    assert rows_of(batch_set) == [(0, 32)] and batch_set.planned_batches == 1
    (batch_id,) = batch_set.batch_ids
    assert batch_id in batches_on_server()
    pushed = task_context["ti"].pushed
    assert pushed["batch_set"] == returned
    # The set says the service: nothing else is pushed for downstream tasks to piece together.
    assert set(pushed) == {"batch_set", "batch_status_url"}
    status_url = pushed["batch_status_url"]
    assert status_url.endswith(f"/api/mtService/v1.0.0/batch/{batch_id}")
    hook = MrsDeployHook()
    response = hook.get_conn().get(
        status_url, headers={"Authorization": f"Bearer {reference_server.login()}"}, timeout=10
    )
    assert response.status_code == 200 and response.json()["totalItemCount"] == 32


def test_a_split_input_returns_each_batchs_rows_in_input_order(
    mrsdeploy_conn: str, task_context: Any
) -> None:
    returned = submit(mtcars_csv_path(), deferrable=False, max_records_per_batch=10).execute(
        task_context
    )
    batch_set = BatchSet.from_json(returned)
    assert (batch_set.service_name, batch_set.service_version) == ("mtService", "v1.0.0")
    assert rows_of(batch_set) == [(0, 10), (10, 10), (20, 10), (30, 2)]
    assert batch_set.planned_batches == 4 and batch_set.row_count == 32
    assert len(set(batch_set.batch_ids)) == 4
    assert set(batch_set.batch_ids) <= set(batches_on_server())
    assert task_context["ti"].pushed["batch_set"] == returned
    hook = MrsDeployHook()
    try:  # each batch on the server holds the rows the set says it holds
        for part in batch_set.parts:
            total = hook.get_batch_status("mtService", "v1.0.0", part.batch_id).total_item_count
            assert total == part.row_count
    finally:
        hook.close()
    # The status link points at the first batch.
    assert task_context["ti"].pushed["batch_status_url"].endswith(batch_set.batch_ids[0])


def test_wait_for_completion_returns_after_complete(mrsdeploy_conn: str, task_context: Any) -> None:
    frame = pd.DataFrame({"hp": [110, 93], "wt": [2.62, 2.32], "note": ["x", "y"]})
    returned = submit(frame, wait_for_completion=True, deferrable=False, poll_interval=0.2).execute(
        task_context
    )
    batch_set = BatchSet.from_json(returned)
    assert rows_of(batch_set) == [(0, 2)]
    hook = MrsDeployHook()
    try:
        status = hook.get_batch_status("mtService", "v1.0.0", batch_set.batch_ids[0])
    finally:
        hook.close()
    assert status.state.value == "Complete" and status.total_item_count == 2


def test_deferrable_submit_defers_with_a_plain_json_trigger(
    mrsdeploy_conn: str, task_context: Any
) -> None:
    operator = submit([{"hp": 110, "wt": 2.62}], deferrable=True, poll_interval=1, timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(task_context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, MrsDeployBatchTrigger)
    _, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    pushed = task_context["ti"].pushed["batch_set"]  # pushed before deferring
    batch_set = BatchSet.from_json(pushed)
    assert rows_of(batch_set) == [(0, 1)]
    # The trigger holds what it polls; the rows come back from the pushed set on resume.
    assert kwargs["batch_set"] == batch_set.for_polling().to_json()
    assert kwargs["deadline"] is not None
    assert "batch_ids" not in kwargs and "service_name" not in kwargs
    assert deferred.value.method_name == "execute_complete"
    batch_id = batch_set.batch_ids[0]
    complete = run_trigger(trigger)
    assert complete["status"] == "complete" and complete["batch_ids"] == [batch_id]
    assert "batch_set" not in complete  # see BatchEvent.batch_set
    task_context["ti"].publish("submit")
    assert operator.execute_complete(task_context, complete) == pushed
    # An event of a trigger started by an earlier release carried the whole set, or named the
    # ids only; with the pushed set gone, the set is rebuilt from the task's own service (its
    # rows are then no longer known).
    assert operator.execute_complete(task_context, {**complete, "batch_set": pushed}) == pushed
    task_context["ti"].store.clear()
    assert operator.execute_complete(task_context, {**complete, "batch_set": pushed}) == pushed
    resumed = BatchSet.from_json(operator.execute_complete(task_context, complete))
    assert resumed == BatchSet.of_ids(("mtService", "v1.0.0"), [batch_id])


def test_a_resumed_submit_refuses_a_pushed_set_of_other_batches(
    mrsdeploy_conn: str, task_context: Any
) -> None:
    """The rows of each batch come from the set pushed before deferring: one that names other
    batches (its XCom replaced meanwhile) would give the batches the wrong rows."""
    operator = submit([{"hp": 110, "wt": 2.62}], deferrable=True, poll_interval=1, timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(task_context)
    complete = run_trigger(deferred.value.trigger)
    other = BatchSet.of_row_counts(("mtService", "v1.0.0"), [("another-batch", 1)], 1)
    task_context["ti"].store[("submit", "batch_set")] = other.to_json()
    with pytest.raises(MrsDeployError, match=r"pushed before it deferred \(another-batch\)"):
        operator.execute_complete(task_context, complete)


def test_a_timeout_or_failure_event_is_acted_on_whatever_xcom_holds(
    mrsdeploy_conn: str, task_context: Any, faults: Any
) -> None:
    """The batches a timed-out wait leaves are cancelled, and a failure is reported, even when
    the set pushed before deferring is gone or names other batches."""
    faults({"rowDelaySeconds": 10.0})
    for pushed in (None, BatchSet.of_ids(("mtService", "v1.0.0"), ["another-batch"]).to_json()):
        operator = submit([{"hp": 110, "wt": 2.62}] * 2, deferrable=True, parallel_count=1)
        with pytest.raises(TaskDeferred):
            operator.execute(task_context)
        (batch_id,) = BatchSet.from_json(task_context["ti"].pushed["batch_set"]).batch_ids
        task_context["ti"].store[("submit", "batch_set")] = pushed
        failed = {"status": "failed", "batch_ids": [batch_id], "message": "Failed on the server"}
        with pytest.raises(MrsDeployBatchFailedError, match="Failed on the server"):
            operator.execute_complete(task_context, failed)
        timeout = {"status": "timeout", "batch_ids": [batch_id], "completed": 0, "total": 2}
        with pytest.raises(MrsDeployBatchTimeoutError, match="cancelled on the server"):
            operator.execute_complete(task_context, timeout)
        assert batch_id not in batches_on_server()


def test_failed_event_fails_and_timeout_event_cancels(
    mrsdeploy_conn: str, task_context: Any, faults: Any
) -> None:
    faults({"rowDelaySeconds": 2.0})
    operator = submit([{"hp": 110, "wt": 2.62}] * 3, parallel_count=1, deferrable=False)
    (batch_id,) = BatchSet.from_json(operator.execute(task_context)).batch_ids
    with pytest.raises(MrsDeployBatchFailedError):
        operator.execute_complete(task_context, {"status": "failed", "batch_ids": [batch_id]})
    with pytest.raises(MrsDeployBatchTimeoutError, match="cancelled on the server"):
        operator.execute_complete(task_context, {"status": "timeout", "batch_ids": [batch_id]})
    assert batch_id not in batches_on_server()


def test_bad_records_fail_before_anything_is_sent(mrsdeploy_conn: str, task_context: Any) -> None:
    before = set(batches_on_server())
    with pytest.raises(MrsDeployRecordsError, match=r"expects \['hp', 'wt'\]"):
        submit([{"hp": 110}], deferrable=False).execute(task_context)
    with pytest.raises(MrsDeployRecordsError, match="row 1, column 'wt'"):
        submit([{"hp": 110, "wt": 2.6}, {"hp": 1, "wt": float("nan")}], deferrable=False).execute(
            task_context
        )
    assert set(batches_on_server()) == before


def test_unknown_service_says_so(mrsdeploy_conn: str, task_context: Any) -> None:
    from airflow_provider.api import MrsDeployNotFoundError

    with pytest.raises(MrsDeployNotFoundError, match="noSuchService"):
        submit([{"hp": 1, "wt": 2}], service_name="noSuchService", deferrable=False).execute(
            task_context
        )


def test_templated_fields_and_default_deferrable() -> None:
    operator = submit("x.csv")
    assert {"service_name", "service_version", "records"} <= set(operator.template_fields)
    assert operator.deferrable is False  # [operators] default_deferrable is False here
