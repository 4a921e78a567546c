"""Lineage of a Submit task that deferred: the instance that resumes still names its batches.

After deferral Airflow resumes the task on a new operator instance, built from the DAG, that
only sees the trigger's event in ``execute_complete``. Its OpenLineage outputs must be the same
batch datasets a task that waited on the worker reports. Everything runs against the reference
server; the deferred wait is the real trigger polling it until the batches are complete.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider.batch_set import BatchSet
from airflow_provider.compat import TaskDeferred
from airflow_provider.operators import MrsDeploySubmitBatchOperator
from airflow_provider.sample_data import mtcars_csv_path
from airflow_provider.triggers import MrsDeployBatchTrigger
from airflow_provider.waiting.events import BatchEvent, BatchEventStatus
from tests.faults.helpers import MT, run_trigger
from tests.support.server import ReferenceServer

#: 32 rows in, cut into batches of at most 16: two batches.
SPLIT = 16


def submit_operator(**kwargs: Any) -> MrsDeploySubmitBatchOperator:
    kwargs.setdefault("records", mtcars_csv_path())
    kwargs.setdefault("poll_interval", 0.2)
    return MrsDeploySubmitBatchOperator(
        task_id="submit", service_name=MT[0], service_version=MT[1], **kwargs
    )


def names(datasets: Any) -> list[tuple[str, str]]:
    return [(dataset.namespace, dataset.name) for dataset in datasets]


def batch_datasets(server: ReferenceServer, batch_ids: list[str]) -> list[tuple[str, str]]:
    """What the lineage should name: each batch on the server, in submission order."""
    return [(server.url, f"{MT[0]}/{MT[1]}/batch/{batch_id}") for batch_id in batch_ids]


def ids_of(result: dict[str, Any]) -> list[str]:
    """The batch ids of a Submit task's return value (the batch set), in input order."""
    return list(BatchSet.from_json(result).batch_ids)


def rows_of(result: dict[str, Any]) -> list[tuple[int | None, int | None]]:
    return [(part.first_row, part.row_count) for part in BatchSet.from_json(result).parts]


def defer_and_wait(op: MrsDeploySubmitBatchOperator, context: Any) -> dict[str, Any]:
    """Run ``execute`` until it defers, then the trigger it handed over until its event; the
    payload comes back through JSON, as Airflow stores it between triggerer and worker."""
    try:
        with pytest.raises(TaskDeferred) as deferral:
            op.execute(context)
    finally:
        op.hook.close()
    trigger = deferral.value.trigger
    assert isinstance(trigger, MrsDeployBatchTrigger)
    payload = run_trigger(trigger)
    context["ti"].publish(op.task_id)  # what the task pushed, as Airflow keeps it
    return dict(json.loads(json.dumps(payload)))


@pytest.mark.parametrize("split", [None, SPLIT], ids=["one-batch", "two-batches"])
def test_resumed_instance_reports_the_batches_as_outputs(
    reference_server: ReferenceServer,
    mrsdeploy_conn: str,
    task_context: Any,
    split: int | None,
) -> None:
    payload = defer_and_wait(
        submit_operator(deferrable=True, timeout=120, max_records_per_batch=split), task_context
    )
    event = BatchEvent.from_payload(payload)
    assert event.status is BatchEventStatus.COMPLETE and event.completed == 32
    pushed_set = task_context["ti"].pushed["batch_set"]
    pushed = ids_of(pushed_set)
    assert list(event.batch_ids) == pushed and len(pushed) == (1 if split is None else 2)
    # The event carries the ids across the triggerer; the rows stay in XCom.
    assert "batch_set" not in payload
    assert rows_of(pushed_set) == ([(0, 32)] if split is None else [(0, 16), (16, 16)])

    resumed = submit_operator(deferrable=True, timeout=120, max_records_per_batch=split)
    # A new instance knows nothing of the batches until the event reaches it ...
    assert resumed.get_openlineage_facets_on_complete(None).outputs == []
    try:
        result = resumed.execute_complete(task_context, payload)
        lineage = resumed.get_openlineage_facets_on_complete(None)
    finally:
        resumed.hook.close()
    # ... and once it has, the outputs name every batch of the event, in order, and it
    # returns the set the first instance pushed (read back from XCom).
    assert result == pushed_set
    assert names(lineage.outputs) == batch_datasets(reference_server, pushed)
    assert names(lineage.inputs) == [("file", mtcars_csv_path())]
    facet = lineage.job_facets["mrsdeploy_service"]
    assert (facet.server, facet.service_name, facet.service_version) == (
        reference_server.url,
        *MT,
    )


def test_deferred_and_waited_submissions_report_the_same_lineage(
    reference_server: ReferenceServer,
    mrsdeploy_conn: str,
    task_context: Any,
) -> None:
    waited = submit_operator(
        deferrable=False, wait_for_completion=True, max_records_per_batch=SPLIT
    )
    try:
        waited_ids = ids_of(waited.execute(task_context))
        waited_lineage = waited.get_openlineage_facets_on_complete(None)
    finally:
        waited.hook.close()

    deferred_context: Any = {"ti": type(task_context["ti"])()}
    payload = defer_and_wait(
        submit_operator(deferrable=True, timeout=120, max_records_per_batch=SPLIT),
        deferred_context,
    )
    resumed = submit_operator(deferrable=True, timeout=120, max_records_per_batch=SPLIT)
    try:
        deferred_ids = ids_of(resumed.execute_complete(deferred_context, payload))
        deferred_lineage = resumed.get_openlineage_facets_on_complete(None)
    finally:
        resumed.hook.close()

    assert len(waited_ids) == len(deferred_ids) == 2 and not set(waited_ids) & set(deferred_ids)
    assert names(waited_lineage.outputs) == batch_datasets(reference_server, waited_ids)
    assert names(deferred_lineage.outputs) == batch_datasets(reference_server, deferred_ids)
    # Same datasets but for the ids: same namespace, same naming, same inputs and job facets.
    assert [ns for ns, _ in names(deferred_lineage.outputs)] == [
        ns for ns, _ in names(waited_lineage.outputs)
    ]
    assert names(deferred_lineage.inputs) == names(waited_lineage.inputs)
    assert deferred_lineage.job_facets == waited_lineage.job_facets
