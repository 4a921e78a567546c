"""A wait ends on what the API allows, and only starts with a usable limit.

- A batch the server calls ``Complete`` with rows unfinished breaks the API contract (a
  complete batch has finished every row, succeeded or failed): the wait used to succeed, and
  Collect then refused the batch. It is a protocol error on every path, the trigger's error
  event included.
- A status answer whose keys are not spelled as documented was parsed with every row result
  built, holding the trigger's event loop for about 0.2 s a MiB: only the state and counts are
  read now, as on the fast path.
- A ``timeout`` that is NaN made a deadline no time reaches (the wait polled forever), and text
  failed the wait after the batches had started: both are refused when the DAG is parsed; a
  trigger given a deadline that is not a finite number reports it as an error event.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from airflow_provider.api import MrsDeployProtocolError
from airflow_provider.api.parsers import parse_batch_progress
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import (
    MrsDeployRepairFailedRowsOperator,
    MrsDeploySubmitBatchOperator,
)
from airflow_provider.sensors import MrsDeployBatchSensor
from airflow_provider.triggers import MrsDeployBatchTrigger
from tests.faults.crafted import MT, CraftedServer
from tests.faults.helpers import batch_trigger, poll_once, run_trigger


def status(state: str, completed: int, total: int, **more: Any) -> bytes:
    return json.dumps(
        {"state": state, "completedItemCount": completed, "totalItemCount": total, **more}
    ).encode()


@pytest.mark.parametrize("path", ["sync", "async"])
def test_complete_with_rows_unfinished_is_a_protocol_error(
    crafted: CraftedServer, path: str
) -> None:
    crafted.answers.status = status("Complete", 3, 10)
    error = poll_once(path, MrsDeployHook())
    assert isinstance(error, MrsDeployProtocolError), error
    assert "Complete with 3 of its 10 rows finished" in str(error)


def test_the_trigger_reports_it_as_an_error_not_a_success(crafted: CraftedServer) -> None:
    crafted.answers.status = status("Complete", 3, 10)
    payload = run_trigger(batch_trigger(["b1"]), timeout=60)
    assert payload["status"] == "error" and "3 of its 10 rows" in payload["message"]


@pytest.mark.parametrize(
    ("state", "completed", "total"),
    [("Complete", 10, 10), ("Complete", 0, 0), ("InProgress", 12, 10), ("Failed", 3, 10)],
)
def test_counts_the_contract_allows_are_read(state: str, completed: int, total: int) -> None:
    """Odd counts of a running batch are tolerated (the state ends a wait); a failed batch may
    stop with rows unfinished."""
    progress = parse_batch_progress(status(state, completed, total))
    assert (progress.state.value, progress.completed_item_count) == (state, completed)


def test_other_key_spellings_read_the_state_without_building_the_results() -> None:
    """A result the full parser refuses (``success`` is not a boolean) shows the results were
    not built: waiting never reads them, on the fast path or this one."""
    rows = [{"success": "perhaps"}] * 3
    body = json.dumps(
        {"State": "Complete", "CompletedItemCount": 3, "TotalItemCount": 3, "Results": rows}
    ).replace('"Results"', '"batchExecutionResults"')
    progress = parse_batch_progress(body.encode())
    assert (progress.state.value, progress.total_item_count, progress.results) == (
        "Complete",
        3,
        (),
    )


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -1, "ten minutes", "600"])
def test_an_unusable_timeout_is_refused_when_the_dag_is_parsed(timeout: object) -> None:
    with pytest.raises(ValueError, match="timeout must be None, a timedelta or a finite"):
        MrsDeploySubmitBatchOperator(
            task_id="s", service_name="s", service_version="v", records=[{"a": 1}], timeout=timeout
        )
    with pytest.raises(ValueError, match="timeout must be None"):
        MrsDeployRepairFailedRowsOperator(task_id="r", destination="/x", timeout=timeout)


@pytest.mark.parametrize("deadline", [math.nan, "nan", math.inf, "soon"])
def test_a_trigger_with_an_unusable_deadline_reports_an_error(deadline: object) -> None:
    payload = run_trigger(batch_trigger(["b1"], deadline=deadline), timeout=30)
    assert payload["status"] == "error" and "deadline must be None or finite" in payload["message"]


def test_a_flag_given_as_text_is_refused() -> None:
    with pytest.raises(ValueError, match="cancel_on_kill must be True or False"):
        MrsDeploySubmitBatchOperator(
            task_id="s",
            service_name=MT[0],
            service_version=MT[1],
            records=[{"a": 1}],
            cancel_on_kill="false",  # type: ignore[arg-type]
        )


def test_a_trigger_given_one_id_as_text_reports_an_error_not_its_characters() -> None:
    """``batch_ids="b1"`` polled the batches ``b`` and ``1``."""
    trigger = MrsDeployBatchTrigger(batch_ids="b1", service_name=MT[0], service_version=MT[1])  # type: ignore[arg-type]
    payload = run_trigger(trigger, timeout=30)
    assert payload["status"] == "error" and "must be a list of ids" in payload["message"]


@pytest.mark.parametrize("name", ["cancel_on_kill", "cancel_on_timeout"])
def test_the_sensor_refuses_a_flag_given_as_text(name: str) -> None:
    """``"false"`` counted as true: the batch was cancelled when the user meant to keep it."""
    with pytest.raises(ValueError, match=f"{name} must be True or False"):
        MrsDeployBatchSensor(
            task_id="w", batch_id="b1", service_name="s", service_version="v", **{name: "false"}
        )
