"""A batch where 30% of the rows fail: every row is written with its error, and the task's
failure policy decides, quoting the first errors."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.operators.collect import MrsDeployFailedRowsError
from tests.faults.helpers import CARS, MT, check_manifest, collect, sensor, submit
from tests.support.server import ReferenceServer

SEED = 11
RATIO = 0.3
ROWS = [CARS[i % len(CARS)] for i in range(40)]


def expected_failures() -> list[int]:
    """The rows the server's ``failRatio`` fault fails (its documented, deterministic draw)."""
    return [i for i in range(len(ROWS)) if random.Random(f"{SEED}:{i}").random() < RATIO]


@pytest.fixture
def failed_batch(
    fast_conn: str, reference_server: ReferenceServer, task_context: Any
) -> dict[str, Any]:
    """The batch set of a finished batch whose rows failed as :func:`expected_failures` says."""
    with reference_server.faults(failRatio=RATIO, failSeed=SEED, service=MT[0]):
        batch_set = submit(task_context, ROWS)
        sensor(batch_set).execute(task_context)  # rows read the faults as they start
    return batch_set


def test_seed_gives_a_failure_share_between_the_two_policies() -> None:
    share = len(expected_failures()) / len(ROWS)
    assert 0.2 < share < 0.5, share


def test_all_rows_written_with_their_errors(
    failed_batch: dict[str, Any], task_context: Any, tmp_path: Path
) -> None:
    result = collect(task_context, failed_batch, tmp_path / "out")
    failed = expected_failures()
    assert result["rows"] == len(ROWS) and result["failed_rows"] == len(failed)
    table = pd.read_parquet(tmp_path / "out" / "outputs.parquet")
    assert list(table["index"]) == list(range(len(ROWS)))
    assert list(table.index[~table["success"]]) == failed
    for i in failed:
        assert table.loc[i, "error_message"] == f"Injected failure for row {i}."
        assert pd.isna(table.loc[i, "answer"])
    assert table.loc[table["success"], "answer"].notna().all()
    manifest = check_manifest(tmp_path / "out")
    assert manifest["counts"]["failed_rows"] == len(failed)
    with_files = {entry["index"] for entry in manifest["files"]}
    assert with_files == set(range(len(ROWS))) - set(failed)  # failed rows wrote no files


def test_ratio_above_the_limit_fails_quoting_the_first_errors(
    failed_batch: dict[str, Any], task_context: Any, tmp_path: Path
) -> None:
    failed = expected_failures()
    with pytest.raises(MrsDeployFailedRowsError) as info:
        collect(
            task_context, failed_batch, tmp_path / "out", include_files=False, max_failed_ratio=0.2
        )
    message = str(info.value)
    assert f"{len(failed)} of {len(ROWS)} rows failed" in message
    for i in failed[:3]:
        assert f"row {i}: Injected failure for row {i}." in message
    assert f"row {failed[3]}:" not in message  # only the first errors are quoted
    table = pd.read_parquet(tmp_path / "out" / "outputs.parquet")
    assert len(table) == len(ROWS)  # the outputs were still written, failures included


def test_ratio_under_the_limit_passes(
    failed_batch: dict[str, Any], task_context: Any, tmp_path: Path
) -> None:
    result = collect(
        task_context, failed_batch, tmp_path / "out", include_files=False, max_failed_ratio=0.5
    )
    assert result["failed_rows"] == len(expected_failures())
    assert (tmp_path / "out" / "manifest.json").exists()
