"""A state-store entry a retried Submit cannot read is not silently dropped: the batches it
still names are cancelled (a retry used to submit afresh and leave them running), one written
by a newer provider fails the task and leaves its batches to a worker that can read it, and
a corrupt entry cannot steer a request."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider.batch_set import BatchSet
from airflow_provider.exceptions import MrsDeployBatchSetError
from airflow_provider.operators import MrsDeploySubmitBatchOperator
from airflow_provider.operators.submission import STATE_KEY, named_batches
from tests.operators.test_retry_with_changed_records import (
    DIES,
    ROWS,
    first_try_dies,
    server_batches,
)
from tests.operators.test_retry_with_changed_records import submit as echo_submit
from tests.support.state_store import MemoryStateStore


def submit(**kwargs: Any) -> MrsDeploySubmitBatchOperator:
    return echo_submit(ROWS, max_records_per_batch=2, **kwargs)


@pytest.fixture
def recorded(task_context: dict[str, Any], slow_store: MemoryStateStore) -> dict[str, Any]:
    """The entry of a first try that started two batches and died while they ran on."""
    first_try_dies(submit(**DIES), task_context)
    entry: dict[str, Any] = slow_store.values[STATE_KEY]
    return entry


def test_a_corrupt_entry_has_its_batches_cancelled_before_submitting_afresh(
    mrsdeploy_conn: str,
    task_context: dict[str, Any],
    recorded: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    earlier = {part["batch_id"] for part in recorded["batches"]}
    recorded["planned_batches"] = -1  # no longer a readable batch set
    with caplog.at_level(logging.WARNING):
        fresh = BatchSet.from_json(submit().execute(task_context))
    assert not earlier & server_batches()  # cancelled: a cancel deletes
    assert not earlier & set(fresh.batch_ids) and set(fresh.batch_ids) <= server_batches()
    messages = [record.getMessage() for record in caplog.records]
    assert any(
        "cannot read" in m and "bad planned_batches" in m and "cancelling the batches" in m
        for m in messages
    ), messages


def test_an_entry_of_a_newer_provider_fails_and_leaves_its_batches_running(
    mrsdeploy_conn: str, task_context: dict[str, Any], recorded: dict[str, Any]
) -> None:
    earlier = {part["batch_id"] for part in recorded["batches"]}
    recorded["version"] = 2
    before = server_batches()
    with pytest.raises(MrsDeployBatchSetError, match="upgrade the provider on every worker"):
        submit().execute(task_context)
    assert server_batches() == before and earlier <= before
    assert task_context["task_state_store"].values[STATE_KEY] is recorded


def test_an_entry_naming_no_batch_is_logged_and_submitted_afresh(
    mrsdeploy_conn: str, task_context: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    task_context["task_state_store"] = MemoryStateStore()
    task_context["task_state_store"].values[STATE_KEY] = "garbage"
    with caplog.at_level(logging.WARNING):
        fresh = BatchSet.from_json(submit().execute(task_context))
    assert set(fresh.batch_ids) <= server_batches()
    messages = [record.getMessage() for record in caplog.records]
    assert any("'garbage'" in m and "names no batch to cancel" in m for m in messages), messages


def test_only_usable_ids_of_a_corrupt_entry_are_taken() -> None:
    """An id that is no batch id (``..`` would reach the service itself) is never sent."""
    entry = {
        "kind": "mrsdeploy_batch_set",
        "service_name": "mtService",
        "service_version": "v1.0.0",
        "batches": [{"batch_id": ".."}, {"batch_id": "a/b"}, "x", {"batch_id": "b1"}, {}],
    }
    assert named_batches(entry) == BatchSet.of_ids(("mtService", "v1.0.0"), ["b1"])
    legacy = {"service_name": "s", "service_version": "v", "batch_ids": ["b2", 3]}
    assert named_batches(legacy) == BatchSet.of_ids(("s", "v"), ["b2"])
    assert named_batches({**entry, "service_name": 5}) is None
    assert named_batches({"service_name": "s", "service_version": "v", "batches": []}) is None
    assert named_batches(["b1"]) is None
