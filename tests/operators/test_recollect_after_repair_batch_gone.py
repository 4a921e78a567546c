"""A repaired destination whose repair batch is gone from the server (deleted, or cancelled,
which on this API deletes it): collecting the same batches again, or repairing it again, is
refused with a clear error before anything is written or sent, rather than failing on a bare
404 or writing the rows' original failures back over their repaired results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider.exceptions import MrsDeployNotFoundError, MrsDeployOutputsError
from airflow_provider.hooks import MrsDeployHook
from tests.faults.helpers import submit
from tests.operators.test_collect import collect
from tests.operators.test_repair import CARS, SERVICE, manifest_of, repair, server_batches

FORMATS = ["parquet", "csv", "jsonl"]


def delete_batch(batch_id: str) -> None:
    """What an administrator cleaning old batches does: a cancel deletes the batch."""
    hook = MrsDeployHook()
    try:
        hook.cancel_batch(*SERVICE, batch_id)
    finally:
        hook.close()


def snapshot(destination: Path) -> dict[str, bytes]:
    """Every file under ``destination`` and its bytes."""
    return {
        str(path.relative_to(destination)): path.read_bytes()
        for path in sorted(destination.rglob("*"))
        if path.is_file()
    }


def repaired_destination(
    context: Any, faults: Any, destination: Path, output_format: str, fail_rows: list[int]
) -> dict[str, Any]:
    """Submit CARS, collect with ``fail_rows`` failing once, repair from the table's inputs;
    return the submitted batch set."""
    faults({"service": SERVICE[0], "failRows": fail_rows, "failOnce": True})
    batch_set = submit(context, CARS, SERVICE, wait_for_completion=True, poll_interval=0.1)
    collect(batch_set, destination, records=CARS, output_format=output_format).execute(context)
    summary = repair(destination).execute(context)
    assert summary["failed_rows"] == 0 and summary["attempts"] == 1
    return batch_set


@pytest.mark.parametrize("output_format", FORMATS)
def test_collecting_again_after_the_repair_batch_is_gone_is_refused_clearly(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path, output_format: str
) -> None:
    destination = tmp_path / "scores"
    batch_set = repaired_destination(task_context, faults, destination, output_format, [1, 3])
    repair_batch = manifest_of(destination)["repairs"][0]["batch_ids"][0]
    delete_batch(repair_batch)
    before = snapshot(destination)

    again = collect(batch_set, destination, records=CARS, output_format=output_format)
    with pytest.raises(MrsDeployOutputsError) as refused:
        again.execute(task_context)

    message = str(refused.value)
    assert not isinstance(refused.value, MrsDeployNotFoundError)
    assert repair_batch in message and "row(s) [1, 3]" in message
    assert "no longer has it" in message and "nothing was written" in message
    assert "collect into a new destination" in message and "run the repair there" in message
    # The repaired rows are not written back as failures: the destination is as it was.
    assert snapshot(destination) == before
    assert manifest_of(destination)["failed_row_indexes"] == []


def test_collecting_again_while_the_repair_batch_exists_keeps_the_repairs(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    """The check asks the server about the repair batches only: with them there, collecting
    again folds them in as before."""
    destination = tmp_path / "scores"
    batch_set = repaired_destination(task_context, faults, destination, "parquet", [1])
    summary = collect(batch_set, destination, records=CARS).execute(task_context)
    assert summary["failed_rows"] == 0
    assert len(manifest_of(destination)["repairs"]) == 1


def test_repairing_again_after_an_earlier_repair_batch_is_gone_sends_nothing(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    """A merge rebuilds the table from every recorded batch: with an earlier repair batch
    gone it could not merge, so the next attempt is refused before any row is sent."""
    destination = tmp_path / "scores"
    faults({"service": SERVICE[0], "failRows": [0, 1]})  # fail every time
    batch_set = submit(task_context, CARS, SERVICE, wait_for_completion=True, poll_interval=0.1)
    collect(batch_set, destination, records=CARS).execute(task_context)
    first = repair(destination, max_attempts=1).execute(task_context)
    assert first["still_failed_rows"] == [0, 1] and first["attempts"] == 1
    repair_batch = manifest_of(destination)["repairs"][0]["batch_ids"][0]
    delete_batch(repair_batch)
    faults({"service": "none"})
    before, batches = snapshot(destination), server_batches()

    with pytest.raises(MrsDeployOutputsError, match=r"no longer has it .* nothing was sent"):
        repair(destination, max_attempts=2).execute(task_context)

    assert server_batches() == batches
    assert snapshot(destination) == before
