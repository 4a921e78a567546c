"""Collect against the real reference server: table, files, manifest, re-runs, row failures."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.api import MrsDeployError
from airflow_provider.batch_ref import BatchRef
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import MrsDeployCollectBatchOperator
from airflow_provider.operators.collect import MrsDeployFailedRowsError
from airflow_provider.waiting import MrsDeployBatchTimeoutError, wait_until_done

CARS = [
    {"hp": 110, "wt": 2.62},
    {"hp": 93, "wt": 2.32},
    {"hp": 245, "wt": 3.84},
    {"hp": 66, "wt": 1.835},
]


def finished_batch(rows: list[dict[str, Any]] = CARS) -> str:
    hook = MrsDeployHook()
    try:
        batch_id = hook.start_batch("mtService", "v1.0.0", json.dumps(rows).encode())
        ref = BatchRef("mtService", "v1.0.0", (batch_id,))
        wait_until_done(hook, ref, poll_interval=0.1, deadline=None, cancel_on_timeout=True)
        return batch_id
    finally:
        hook.close()


def collect(batch_id: Any, destination: Path, **kwargs: Any) -> MrsDeployCollectBatchOperator:
    return MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=batch_id,
        destination=str(destination),
        service_name="mtService",
        service_version="v1.0.0",
        **kwargs,
    )


def test_collect_writes_table_files_and_manifest(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    batch_id = finished_batch()
    result = collect(batch_id, tmp_path / "out", records=CARS).execute(task_context)
    assert result["rows"] == 4 and result["failed_rows"] == 0 and result["files"] >= 4
    table = pd.read_parquet(tmp_path / "out" / "outputs.parquet")
    assert list(table["index"]) == [0, 1, 2, 3]
    assert table["success"].all()
    assert list(table["input_hp"]) == [110, 93, 245, 66]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["batch_ids"] == [batch_id]
    assert manifest["counts"]["rows"] == 4 and manifest["counts"]["files"] == result["files"]
    for entry in manifest["files"]:
        content = (tmp_path / "out" / entry["path"]).read_bytes()
        assert len(content) == entry["size"]
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]
    assert {e["index"] for e in manifest["files"]} == {0, 1, 2, 3}


def test_rerun_replaces_the_partition(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    destination = tmp_path / "out"
    collect(finished_batch(), destination, output_format="csv").execute(task_context)
    second = finished_batch(CARS[:2])
    collect(second, destination, output_format="csv").execute(task_context)
    table = pd.read_csv(destination / "outputs.csv")
    assert len(table) == 2
    assert sorted(p.name for p in (destination / "files").iterdir()) == ["0", "1"]
    assert json.loads((destination / "manifest.json").read_text())["batch_ids"] == [second]


def test_failed_rows_stay_in_the_table_and_policy_fails(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, faults: Any
) -> None:
    faults({"failRows": [1, 3]})
    batch_id = finished_batch()
    tolerant = collect(batch_id, tmp_path / "a", output_format="jsonl").execute(task_context)
    assert tolerant["failed_rows"] == 2
    rows = [
        json.loads(line) for line in (tmp_path / "a" / "outputs.jsonl").read_text().splitlines()
    ]
    assert [r["success"] for r in rows] == [True, False, True, False]
    assert rows[1]["error_message"]
    with pytest.raises(MrsDeployFailedRowsError, match="2 of 4 rows failed") as err:
        collect(batch_id, tmp_path / "b", max_failed_ratio=0.25).execute(task_context)
    assert "row 1:" in str(err.value)
    assert (tmp_path / "b" / "manifest.json").exists()


def test_collecting_an_unfinished_batch_is_refused(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, faults: Any
) -> None:
    faults({"rowDelaySeconds": 2.0})
    hook = MrsDeployHook()
    try:
        batch_id = hook.start_batch(
            "mtService", "v1.0.0", json.dumps(CARS).encode(), parallel_count=1
        )
        with pytest.raises(MrsDeployError, match="not complete yet"):
            collect(batch_id, tmp_path / "out").execute(task_context)
        assert not (tmp_path / "out" / "manifest.json").exists()
        ref = BatchRef("mtService", "v1.0.0", (batch_id,))
        with pytest.raises(MrsDeployBatchTimeoutError):
            wait_until_done(hook, ref, poll_interval=0.1, deadline=0.0, cancel_on_timeout=True)
    finally:
        hook.close()


def test_auto_listing_takes_names_from_the_results(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, faults: Any
) -> None:
    """``auto`` needs no listing call for rows whose result names their files; ``always`` lists."""
    batch_id = finished_batch(CARS[:2])
    # A name only the listing endpoint shows, and the server cannot serve.
    faults({"extraFileNames": ["only-listed.txt"]})
    auto = collect(batch_id, tmp_path / "auto").execute(task_context)
    assert auto["files"] == 4  # answer.csv and answer.png of both rows, no listing call made
    with pytest.raises(MrsDeployError, match="only-listed"):
        collect(batch_id, tmp_path / "always", file_listing="always").execute(task_context)


def test_collect_called_from_a_running_event_loop(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """Collect downloads on its own event loop; called where a loop already runs (from async
    code), it runs that loop in a helper thread instead of failing."""
    import asyncio

    batch_id = finished_batch()

    async def from_async_code() -> dict[str, Any]:
        return collect(batch_id, tmp_path / "out").execute(task_context)

    result = asyncio.run(from_async_code())
    assert result["rows"] == 4 and result["files"] >= 4
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["files"]) == result["files"]


def test_nothing_is_written_until_every_batch_is_known_complete(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, faults: Any
) -> None:
    """Results are read a batch at a time, but a later batch that failed or is still running
    stops the collect before any file of an earlier batch lands."""
    from airflow_provider.waiting import MrsDeployBatchFailedError

    complete = finished_batch(CARS[:2])
    faults({"failNextBatches": 1})
    hook = MrsDeployHook()
    try:
        failed = hook.start_batch("mtService", "v1.0.0", json.dumps(CARS[2:]).encode())
        while not hook.get_batch_status("mtService", "v1.0.0", failed).is_terminal:
            time.sleep(0.05)
    finally:
        hook.close()
    with pytest.raises(MrsDeployBatchFailedError, match=failed):
        collect([complete, failed], tmp_path / "failed").execute(task_context)
    assert not (tmp_path / "failed" / "files").exists()

    faults({"rowDelaySeconds": 2.0})
    hook = MrsDeployHook()
    try:
        running = hook.start_batch(
            "mtService", "v1.0.0", json.dumps(CARS[2:]).encode(), parallel_count=1
        )
        with pytest.raises(MrsDeployError, match="not complete yet"):
            collect([complete, running], tmp_path / "running").execute(task_context)
        assert not (tmp_path / "running" / "files").exists()
        hook.cancel_batch("mtService", "v1.0.0", running)
    finally:
        hook.close()


def test_a_batch_missing_results_is_refused_before_anything_is_written(
    task_context: Any, tmp_path: Path
) -> None:
    """A server answering ``Complete`` with fewer results than rows (not something the
    reference server does) must not produce a shorter table."""
    from airflow_provider.api import BatchStatus, ExecutionResult, MrsDeployBatchState, ServiceInfo

    whole = BatchStatus(
        MrsDeployBatchState.COMPLETE, 2, 2, (ExecutionResult(True), ExecutionResult(True))
    )
    short = BatchStatus(MrsDeployBatchState.COMPLETE, 3, 3, (ExecutionResult(True),))

    class Hook:
        def get_service(self, name: str, version: str) -> ServiceInfo:
            return ServiceInfo(name=name, version=version)

        def get_batch_status(self, name: str, version: str, batch_id: str, **_: Any) -> Any:
            return {"b1": whole, "b2": short}[batch_id]

    operator = collect(["b1", "b2"], tmp_path / "out")
    operator.__dict__["hook"] = Hook()
    with pytest.raises(MrsDeployError, match="batch b2 reports 3 rows but returned 1 results"):
        operator.execute(task_context)
    assert not (tmp_path / "out").exists()
