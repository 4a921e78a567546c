"""Collect against the real reference server: what it refuses before touching the destination,
what it leaves alone, how it names odd outputs, and how it reports progress."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.outputs import MrsDeployDestinationError, MrsDeployOutputsError
from tests.operators.test_collect import CARS, collect, finished_batch


def test_a_destination_that_climbs_is_refused_before_any_request(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """The batch id does not exist: the destination error comes first, not a 404."""
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("keep")
    with pytest.raises(MrsDeployDestinationError, match=r"'\.\.' segment"):
        collect("no-such-batch", tmp_path / "root" / ".." / "victim").execute(task_context)
    assert [p.name for p in (tmp_path / "victim").iterdir()] == ["keep.txt"]


def test_mixed_output_types_are_refused_before_any_download(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, faults: Any
) -> None:
    faults({"service": "mtService", "rowOutputs": {"2": {"answer": "n/a"}}})
    batch_id = finished_batch()
    destination = tmp_path / "out"
    with pytest.raises(MrsDeployOutputsError) as error:
        collect(batch_id, destination).execute(task_context)
    assert "'answer'" in str(error.value) and "row 2" in str(error.value)
    assert "'n/a'" in str(error.value)
    assert not destination.exists()


def test_outputs_named_like_the_tables_columns_never_overwrite_them(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, faults: Any
) -> None:
    faults(
        {
            "service": "mtService",
            "failRows": [1],
            "rowOutputs": {"0": {"success": "yes", "index": 99}, "2": {"success": "no"}},
        }
    )
    batch_id = finished_batch()
    result = collect(batch_id, tmp_path / "out", output_format="jsonl").execute(task_context)
    assert result["failed_rows"] == 1
    lines = (tmp_path / "out" / "outputs.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert [r["success"] for r in rows] == [True, False, True, True]
    assert [r["output_success"] for r in rows] == ["yes", None, "no", None]
    assert [r["output_index"] for r in rows] == [99, None, None, None]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["renamed_outputs"] == {"success": "output_success", "index": "output_index"}


def test_a_foreign_table_is_refused_and_the_previous_run_stays_whole(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    destination = tmp_path / "out"
    batch_id = finished_batch()
    collect(batch_id, destination).execute(task_context)
    manifest = (destination / "manifest.json").read_text()
    (destination / "outputs.csv").write_text("a user's own table")
    with pytest.raises(MrsDeployDestinationError, match=r"outputs\.csv"):
        collect(batch_id, destination, output_format="csv").execute(task_context)
    assert (destination / "manifest.json").read_text() == manifest  # not withdrawn
    assert (destination / "outputs.csv").read_text() == "a user's own table"
    assert len(pd.read_parquet(destination / "outputs.parquet")) == len(CARS)


def test_foreign_files_and_partitions_under_the_destination_are_kept(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    destination = tmp_path / "scores" / "2026-05-01"
    partition = destination / "chunk=0000"
    collect(finished_batch(CARS[:2]), partition).execute(task_context)
    partition_files = {p: p.read_bytes() for p in partition.rglob("*") if p.is_file()}
    (destination / "README.md").parent.mkdir(parents=True, exist_ok=True)
    (destination / "README.md").write_text("mine")
    collect(finished_batch(), destination).execute(task_context)
    collect(finished_batch(CARS[:1]), destination, output_format="csv").execute(task_context)
    assert {p: p.read_bytes() for p in partition.rglob("*") if p.is_file()} == partition_files
    assert (destination / "README.md").read_text() == "mine"
    assert sorted(p.name for p in (destination / "files").iterdir()) == ["0"]
    assert not (destination / "outputs.parquet").exists()


def test_long_collects_log_progress(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch_id = finished_batch()
    operator = collect(batch_id, tmp_path / "out", progress_interval=timedelta(microseconds=1))
    capsys.readouterr()
    operator.execute(task_context)
    output = capsys.readouterr().out
    lines = [line for line in output.splitlines() if "files landed" in line]
    assert len(lines) >= 2
    assert "8 of 8 files landed (100.0%)" in lines[-1]
    assert sum("8 of 8" in line for line in lines) == 1
    assert any("left" in line for line in lines[:-1])


@pytest.mark.parametrize("interval", [0, -1.0, timedelta(0), timedelta(seconds=-1)])
def test_progress_interval_must_be_positive(interval: float | timedelta) -> None:
    with pytest.raises(ValueError, match="progress_interval"):
        collect("b", Path("/tmp/x"), progress_interval=interval)
