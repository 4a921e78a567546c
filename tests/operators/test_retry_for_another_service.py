"""A retry whose service changed (a templated name or version rendered differently) cancels
the earlier try's batches on their own service before submitting afresh: nothing is left
running that no record names any more."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider.batch_set import BatchSet
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import MrsDeploySubmitBatchOperator
from airflow_provider.operators.submission import STATE_KEY
from tests.support.state_store import MemoryStateStore

#: Rows both services take (each drops the columns it does not use).
ROWS = [{"hp": 110, "wt": 2.62, "text": "a", "n": 1}] * 3


def rendered_submit(
    service: str, context: dict[str, Any], **kwargs: Any
) -> MrsDeploySubmitBatchOperator:
    """A try of one Submit task whose service comes from a templated param, rendered as the
    task runner renders it."""
    with DAG("retry_service", schedule=None, start_date=datetime(2026, 1, 1)):
        operator = MrsDeploySubmitBatchOperator(
            task_id="submit",
            service_name="{{ params.service }}",
            service_version="v1.0.0",
            records=ROWS,
            parallel_count=1,
            **kwargs,
        )
    operator.render_template_fields({**context, "params": {"service": service}})
    return operator


def batches_of(name: str) -> set[str]:
    hook = MrsDeployHook()
    try:
        return set(hook.list_batches(name, "v1.0.0"))
    finally:
        hook.close()


def test_a_retry_for_another_service_cancels_the_earlier_batches(
    mrsdeploy_conn: str,
    task_context: dict[str, Any],
    faults: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    faults({"rowDelaySeconds": 1.0})  # the first try's batch is still running at the retry
    store = MemoryStateStore()
    task_context["task_state_store"] = store
    first = rendered_submit(
        "mtService", task_context, wait_for_completion=True, timeout=0.1, cancel_on_timeout=False
    )
    with pytest.raises(Exception, match="deadline"):
        first.execute(task_context)  # the try dies while its batch runs on
    (earlier,) = BatchSet.from_json(store.values[STATE_KEY]).batch_ids
    assert earlier in batches_of("mtService")

    retry = rendered_submit("echoService", task_context)
    with caplog.at_level(logging.INFO, logger="airflow_provider.operators.submission"):
        fresh = BatchSet.from_json(retry.execute(task_context))

    assert (fresh.service_name, fresh.service_version) == ("echoService", "v1.0.0")
    assert earlier not in fresh.batch_ids
    assert earlier not in batches_of("mtService")  # cancelled: a cancel deletes the batch
    messages = [record.getMessage() for record in caplog.records]
    assert any("another service" in m and "mtService v1.0.0" in m for m in messages), messages
    assert f"Cancelled batch {earlier}" in messages


def test_a_failed_cancel_does_not_stop_the_new_submission(
    mrsdeploy_conn: str, task_context: dict[str, Any]
) -> None:
    """The earlier batch may be gone already (or the cancel refused): the retry goes on."""
    store = MemoryStateStore()
    task_context["task_state_store"] = store
    gone = "00000000-0000-0000-0000-000000000000"
    store.values[STATE_KEY] = BatchSet.of_row_counts(
        ("mtService", "v1.0.0"), [(gone, 3)], 1
    ).to_json()
    retry = rendered_submit("echoService", task_context)
    fresh = BatchSet.from_json(retry.execute(task_context))
    assert fresh.service_name == "echoService"
    assert gone not in fresh.batch_ids
