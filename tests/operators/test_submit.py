"""Submit against the real reference server: validation, XCom, deferral and waiting."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from airflow_provider.compat import TaskDeferred
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import MrsDeploySubmitBatchOperator
from airflow_provider.records import MrsDeployRecordsError
from airflow_provider.sample_data import mtcars_csv_path
from airflow_provider.triggers import MrsDeployBatchTrigger
from airflow_provider.waiting import MrsDeployBatchFailedError, MrsDeployBatchTimeoutError


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


def test_submit_csv_pushes_ids_and_service(
    reference_server: Any, mrsdeploy_conn: str, task_context: Any
) -> None:
    batch_id = submit(mtcars_csv_path(), deferrable=False).execute(task_context)
    assert batch_id in batches_on_server()
    pushed = task_context["ti"].pushed
    assert pushed["service_name"] == "mtService" and pushed["service_version"] == "v1.0.0"
    assert pushed["batch_ids"] == [batch_id]
    status_url = pushed["batch_status_url"]
    assert status_url.endswith(f"/api/mtService/v1.0.0/batch/{batch_id}")
    hook = MrsDeployHook()
    response = hook.get_conn().get(
        status_url, headers={"Authorization": f"Bearer {reference_server.login()}"}, timeout=10
    )
    assert response.status_code == 200 and response.json()["totalItemCount"] == 32


def test_wait_for_completion_returns_after_complete(mrsdeploy_conn: str, task_context: Any) -> None:
    frame = pd.DataFrame({"hp": [110, 93], "wt": [2.62, 2.32], "note": ["x", "y"]})
    batch_id = submit(frame, wait_for_completion=True, deferrable=False, poll_interval=0.2).execute(
        task_context
    )
    hook = MrsDeployHook()
    try:
        status = hook.get_batch_status("mtService", "v1.0.0", batch_id)
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
    batch_id = task_context["ti"].pushed["batch_ids"][0]
    assert kwargs["batch_ids"] == [batch_id] and kwargs["deadline"] is not None
    assert deferred.value.method_name == "execute_complete"
    complete = {"status": "complete", "batch_ids": [batch_id], "completed": 1, "total": 1}
    assert operator.execute_complete(task_context, complete) == batch_id


def test_failed_event_fails_and_timeout_event_cancels(
    mrsdeploy_conn: str, task_context: Any, faults: Any
) -> None:
    faults({"rowDelaySeconds": 2.0})
    operator = submit([{"hp": 110, "wt": 2.62}] * 3, parallel_count=1, deferrable=False)
    batch_id = operator.execute(task_context)
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
