from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider.api import BatchStatus, MrsDeployBatchState, MrsDeployError
from airflow_provider.batch_set import BatchSet
from airflow_provider.waiting.events import BatchEvent, BatchEventStatus
from airflow_provider.waiting.progress import BatchOutcome, RateEstimator, evaluate_batches
from airflow_provider.waiting.tasks import compute_deadline


def status(state: str, done: int, total: int) -> BatchStatus:
    return BatchStatus(MrsDeployBatchState.parse(state), done, total)


@pytest.mark.parametrize(
    ("states", "outcome"),
    [
        (["Complete", "Complete"], BatchOutcome.COMPLETE),
        (["Complete", "InProgress"], BatchOutcome.RUNNING),
        (["Pending", "Ready"], BatchOutcome.RUNNING),
        (["Complete", "Failed"], BatchOutcome.FAILED),
        (["InProgress", "failed"], BatchOutcome.FAILED),
    ],
)
def test_evaluate_batches(states: list[str], outcome: BatchOutcome) -> None:
    ids = [f"b{i}" for i in range(len(states))]
    progress = evaluate_batches(ids, [status(s, 1, 2) for s in states])
    assert progress.outcome is outcome
    assert (progress.completed, progress.total) == (len(states), 2 * len(states))


def test_rate_estimator_reports_rate_and_eta() -> None:
    rate = RateEstimator()
    assert rate.observe(100.0, evaluate_batches(["b"], [status("InProgress", 10, 110)])) == (
        None,
        None,
    )
    per_s, eta = rate.observe(110.0, evaluate_batches(["b"], [status("InProgress", 60, 110)]))
    assert per_s == pytest.approx(5.0) and eta == pytest.approx(10.0)


def test_event_round_trip_and_validation() -> None:
    progress = evaluate_batches(["a"], [status("Complete", 3, 3)])
    event = BatchEvent.from_progress(BatchSet.of_ids(("svc", "v1"), ["a"]), progress)
    again = BatchEvent.from_payload(event.to_payload())
    assert again == event and again.status is BatchEventStatus.COMPLETE
    with pytest.raises(MrsDeployError, match="unknown status"):
        BatchEvent.from_payload({"status": "weird", "batch_ids": ["a"]})
    with pytest.raises(MrsDeployError, match="missing or unknown status"):
        BatchEvent.from_payload({"batch_ids": ["a"]})
    with pytest.raises(MrsDeployError):
        BatchEvent.from_payload(None)


def test_deadline_takes_the_earlier_limit() -> None:
    assert compute_deadline(1000.0, None) is None
    assert compute_deadline(1000.0, 60) == 1060.0
    assert compute_deadline(1000.0, 600, timedelta(seconds=30)) == 1030.0
