"""A retried Submit re-attaches to what it started; failures part-way leave nothing running.

The state store stands in for Airflow's per-task-instance ``task_state_store`` (same get / set /
delete interface); the real one is exercised by the end-to-end suite under real processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.batch_set import BatchSet
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import MrsDeployCollectBatchOperator, MrsDeploySubmitBatchOperator
from airflow_provider.operators.submission import STATE_KEY
from tests.support.state_store import MemoryStateStore

SERVICE = ("mtService", "v1.0.0")
CARS = [{"hp": 110, "wt": 2.62}, {"hp": 93, "wt": 2.32}, {"hp": 245, "wt": 3.84}]


def submit(**kwargs: Any) -> MrsDeploySubmitBatchOperator:
    kwargs.setdefault("records", CARS)
    return MrsDeploySubmitBatchOperator(
        task_id="submit", service_name="mtService", service_version="v1.0.0", **kwargs
    )


def ids_of(batch_set: Any) -> tuple[str, ...]:
    """The batch ids of a batch set's JSON (a return value, or the state store's record)."""
    return BatchSet.from_json(batch_set).batch_ids


def server_batches() -> set[str]:
    hook = MrsDeployHook()
    try:
        return set(hook.list_batches("mtService", "v1.0.0"))
    finally:
        hook.close()


@pytest.fixture
def store(task_context: dict[str, Any]) -> MemoryStateStore:
    task_context["task_state_store"] = MemoryStateStore()
    return task_context["task_state_store"]


def test_retry_reattaches_to_the_running_batch(
    mrsdeploy_conn: str, task_context: Any, store: MemoryStateStore, faults: Any
) -> None:
    faults({"rowDelaySeconds": 0.5})
    before = server_batches()
    first = submit(parallel_count=1, wait_for_completion=True, timeout=0.1, cancel_on_timeout=False)
    with pytest.raises(Exception, match="deadline"):
        first.execute(task_context)  # the try dies while the batch runs on
    recorded = store.values[STATE_KEY]  # the batch set, rows included
    assert [(p.first_row, p.row_count) for p in BatchSet.from_json(recorded).parts] == [(0, 3)]
    retry = submit(parallel_count=1, wait_for_completion=True, poll_interval=0.2)
    assert retry.execute(task_context) == recorded  # the same set, not a second copy
    assert server_batches() - before == set(ids_of(recorded))
    assert STATE_KEY not in store.values  # forgotten once complete


def test_failed_or_vanished_batches_are_submitted_again(
    mrsdeploy_conn: str, task_context: Any, store: MemoryStateStore, faults: Any
) -> None:
    faults({"failNextBatches": 1})
    failed = submit(wait_for_completion=True, poll_interval=0.1)
    with pytest.raises(Exception, match="Failed"):
        failed.execute(task_context)
    (failed_id,) = ids_of(store.values[STATE_KEY])
    fresh = ids_of(submit().execute(task_context))
    assert failed_id not in fresh
    vanished = "00000000-0000-0000-0000-000000000000"
    store.values[STATE_KEY] = BatchSet.of_row_counts(SERVICE, [(vanished, 3)], 1).to_json()
    again = ids_of(submit().execute(task_context))
    assert not set(again) & {*fresh, failed_id, vanished}


def test_a_record_of_an_earlier_release_is_reattached_to(
    mrsdeploy_conn: str, task_context: Any, store: MemoryStateStore, faults: Any
) -> None:
    """Earlier releases recorded the service and ids (no rows): a retry after the upgrade still
    waits on those batches, and returns them as a batch set."""
    faults({"rowDelaySeconds": 0.3})
    before = server_batches()
    running = ids_of(submit(parallel_count=1).execute(task_context))
    store.values[STATE_KEY] = {
        "service_name": "mtService",
        "service_version": "v1.0.0",
        "batch_ids": list(running),
        "planned_batches": 1,
    }
    retry = submit(parallel_count=1, wait_for_completion=True, poll_interval=0.1)
    assert retry.execute(task_context) == BatchSet.of_ids(SERVICE, running).to_json()
    assert server_batches() - before == set(running)
    assert STATE_KEY not in store.values


def test_partial_submission_is_cancelled_and_redone(
    mrsdeploy_conn: str, task_context: Any, store: MemoryStateStore, faults: Any
) -> None:
    faults({"rowDelaySeconds": 0.5})
    (orphan,) = ids_of(submit(records=CARS[:1], parallel_count=1).execute(task_context))
    # A try that died after starting the first of two batches (one row each).
    store.values[STATE_KEY] = BatchSet.of_row_counts(SERVICE, [(orphan, 1)], 2).to_json()
    returned = BatchSet.from_json(submit(max_records_per_batch=2).execute(task_context))
    assert [(p.first_row, p.row_count) for p in returned.parts] == [(0, 2), (2, 1)]
    assert orphan not in returned.batch_ids
    assert orphan not in server_batches()


def test_failure_before_the_id_is_recorded_cancels_the_batch(
    mrsdeploy_conn: str, task_context: Any
) -> None:
    task_context["task_state_store"] = MemoryStateStore(fail_on_set=True)
    before = server_batches()
    with pytest.raises(ConnectionError):
        submit().execute(task_context)
    assert server_batches() == before


def test_large_input_is_split_and_collected_back_in_order(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    rows = [{"hp": 60 + 10 * i, "wt": 1.5 + 0.25 * i} for i in range(7)]
    output = submit(
        records=rows, max_records_per_batch=3, wait_for_completion=True, poll_interval=0.1
    ).execute(task_context)
    batch_set = BatchSet.from_json(output)
    assert [(p.first_row, p.row_count) for p in batch_set.parts] == [(0, 3), (3, 3), (6, 1)]
    result = MrsDeployCollectBatchOperator(
        task_id="collect", batch_id=output, destination=str(tmp_path), records=rows
    ).execute(task_context)
    assert result["rows"] == 7
    table = pd.read_parquet(tmp_path / "outputs.parquet")
    assert list(table["index"]) == list(range(7))
    assert list(table["input_hp"]) == [r["hp"] for r in rows]
    single = MrsDeployHook()
    try:
        for i, row in enumerate(rows):
            expected = single.consume("mtService", "v1.0.0", row).output_parameters["answer"]
            assert table["answer"][i] == pytest.approx(expected, abs=1e-12)
    finally:
        single.close()
    files = {p.parent.name for p in (tmp_path / "files").rglob("*") if p.is_file()}
    assert files == {str(i) for i in range(7)}
