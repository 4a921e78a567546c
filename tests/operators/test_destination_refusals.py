"""Collect and Repair against the real reference server: a destination they cannot use is
refused before any request (a file, a relative path), and a repair never reads a collected run
through a symbolic link nor starts a batch for one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.exceptions import MrsDeployOutputsError
from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeployRepairFailedRowsOperator,
)
from airflow_provider.outputs import MrsDeployDestinationError
from tests.operators.test_collect import collect
from tests.operators.test_repair import CARS, repair, scored, server_batches


def test_collect_into_an_existing_file_fails_before_any_request(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """The batch does not exist: the destination error comes first, not the server's 404."""
    (tmp_path / "a-file").write_text("mine")
    os.symlink(tmp_path / "a-file", tmp_path / "link")
    for target in (tmp_path / "a-file", tmp_path / "link", tmp_path / "a-file" / "below"):
        with pytest.raises(MrsDeployDestinationError, match="existing file, not a folder"):
            collect("no-such-batch", target).execute(task_context)
    assert (tmp_path / "a-file").read_text() == "mine"


def test_repair_of_an_existing_file_is_refused_as_such(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("mine")
    with pytest.raises(MrsDeployDestinationError, match="existing file, not a folder"):
        repair(tmp_path / "a-file").execute(task_context)


@pytest.mark.parametrize("destination", ["~/scores", "scores", "file://localhost/scores"])
def test_relative_local_destinations_are_refused_and_nothing_lands_in_the_current_folder(
    mrsdeploy_conn: str,
    task_context: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    destination: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MrsDeployDestinationError):
        MrsDeployCollectBatchOperator(
            task_id="collect",
            batch_id="no-such-batch",
            service_name="mtService",
            service_version="v1.0.0",
            destination=destination,
        ).execute(task_context)
    with pytest.raises(MrsDeployDestinationError):
        MrsDeployRepairFailedRowsOperator(task_id="repair", destination=destination).execute(
            task_context
        )
    assert list(tmp_path.iterdir()) == []


def test_repair_does_not_read_a_linked_manifest_and_starts_nothing(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    faults({"service": "mtService", "failRows": [1], "failOnce": True})
    other = tmp_path / "other"
    scored(task_context, other, records_in_table=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in ("manifest.json", "outputs.parquet"):
        os.symlink(other / name, victim / name)
    batches = server_batches()
    with pytest.raises(MrsDeployOutputsError, match=r"manifest\.json is a symbolic link"):
        repair(victim).execute(task_context)
    assert server_batches() == batches


def test_repair_does_not_read_a_linked_table_and_starts_nothing(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    """Given ``records``, the table is read only when merging: the link is refused before
    the attempt's batches are started all the same."""
    faults({"service": "mtService", "failRows": [1], "failOnce": True})
    destination = tmp_path / "scores"
    scored(task_context, destination, records_in_table=True)
    table = destination / "outputs.parquet"
    moved = tmp_path / "elsewhere.parquet"
    table.rename(moved)
    os.symlink(moved, table)
    batches = server_batches()
    with pytest.raises(MrsDeployOutputsError, match=r"outputs\.parquet is a symbolic link"):
        repair(destination, records=CARS).execute(task_context)
    with pytest.raises(MrsDeployOutputsError, match=r"outputs\.parquet is a symbolic link"):
        repair(destination).execute(task_context)
    assert server_batches() == batches
