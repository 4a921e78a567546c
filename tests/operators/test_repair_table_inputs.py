"""A repair that takes the failed rows' inputs from the table's input columns, against the real
reference server: those columns are re-sent only when they are the rows the manifest's batches
were sent (Submit's fingerprint), so a collect of another submission that died after writing
its table cannot make the repair score other rows and pair them with this run's outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.exceptions import MrsDeployRecordsError
from airflow_provider.outputs import JOURNAL_NAME, MANIFEST_NAME, OutputWriter
from tests.faults.helpers import submit
from tests.operators.test_collect import collect, finished_batch
from tests.operators.test_repair import SERVICE, manifest_of, repair, server_batches

CARS_X = [
    {"hp": 110, "wt": 2.62},
    {"hp": 93, "wt": 3.0},  # a whole number in a decimal column: read back as it was sent
    {"hp": 245, "wt": 3.84},
    {"hp": 66, "wt": 1.835},
]
CARS_Y = [{"hp": 300 + i, "wt": 5.0 + i / 10} for i in range(4)]


def submitted(context: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Submit ``rows`` (fingerprinted by Submit) and wait for them."""
    return submit(context, rows, SERVICE, wait_for_completion=True, poll_interval=0.1)


def die_after_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A collect run from now on dies once its table is in place (before its manifest)."""

    def die(self: OutputWriter, written: Any) -> list[str]:
        raise OSError("worker lost")

    monkeypatch.setattr(OutputWriter, "remove_leftovers", die)


def inputs_of(destination: Path, output_format: str = "parquet") -> list[int]:
    path = destination / f"outputs.{output_format}"
    if output_format == "csv":
        return list(pd.read_csv(path)["input_hp"])
    if output_format == "jsonl":
        return [json.loads(line)["input_hp"] for line in path.read_text().splitlines()]
    return list(pd.read_parquet(path)["input_hp"])


def test_another_submissions_table_left_by_an_interrupted_collect_is_refused(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    destination = tmp_path / "scores"
    faults({"service": "mtService", "failRows": [1], "failOnce": True})
    x = submitted(task_context, CARS_X)
    collect(x, destination, records=CARS_X).execute(task_context)
    faults({"service": "none"})
    y = submitted(task_context, CARS_Y)
    with monkeypatch.context() as patched:
        die_after_the_table(patched)
        with pytest.raises(OSError, match="worker lost"):
            collect(y, destination, records=CARS_Y).execute(task_context)
    assert inputs_of(destination) == [car["hp"] for car in CARS_Y]  # Y's table, X's journal
    batches = server_batches()

    with pytest.raises(MrsDeployRecordsError, match=r"did not finish .* pass records="):
        repair(destination).execute(task_context)
    assert server_batches() == batches  # nothing re-scored with Y's inputs
    assert (destination / JOURNAL_NAME).exists() and not (destination / MANIFEST_NAME).exists()

    # With the submitted records the repair goes on, and writes X's inputs beside X's outputs.
    summary = repair(destination, records=CARS_X).execute(task_context)
    assert summary["failed_rows"] == 0 and summary["attempts"] == 1
    assert inputs_of(destination) == [car["hp"] for car in CARS_X]
    manifest = manifest_of(destination)
    assert manifest["batch_ids"] == [part["batch_id"] for part in x["batches"]]
    assert manifest["records_sha256"] == x["records_sha256"]


def test_an_interrupted_run_without_a_fingerprint_needs_records(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plain batch ids carry no fingerprint: the table left by a run that did not finish
    cannot be told from another submission's, so ``records`` are asked for."""
    destination = tmp_path / "scores"
    faults({"service": "mtService", "failRows": [2], "failOnce": True})
    batch_id = finished_batch(CARS_X)
    collect(batch_id, destination, records=CARS_X).execute(task_context)
    with monkeypatch.context() as patched:
        die_after_the_table(patched)
        with pytest.raises(OSError, match="worker lost"):
            collect(batch_id, destination, records=CARS_X).execute(task_context)
    batches = server_batches()
    with pytest.raises(MrsDeployRecordsError, match=r"no fingerprint .* pass records="):
        repair(destination).execute(task_context)
    assert server_batches() == batches
    summary = repair(destination, records=CARS_X).execute(task_context)
    assert summary["failed_rows"] == 0
    assert inputs_of(destination) == [car["hp"] for car in CARS_X]


@pytest.mark.parametrize("output_format", ["parquet", "csv", "jsonl"])
def test_the_table_inputs_of_a_finished_run_pass_the_check_in_every_format(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path, output_format: str
) -> None:
    destination = tmp_path / "scores"
    faults({"service": "mtService", "failRows": [1], "failOnce": True})
    x = submitted(task_context, CARS_X)
    collect(x, destination, records=CARS_X, output_format=output_format).execute(task_context)
    summary = repair(destination).execute(task_context)
    assert summary["failed_rows"] == 0 and summary["attempts"] == 1
    assert inputs_of(destination, output_format) == [car["hp"] for car in CARS_X]


def test_a_crash_of_the_same_submissions_collect_is_repaired_from_its_table(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The table an interrupted run left holds the rows its manifest's batches were sent:
    checked, the repair goes on from it."""
    destination = tmp_path / "scores"
    faults({"service": "mtService", "failRows": [3], "failOnce": True})
    x = submitted(task_context, CARS_X)
    collect(x, destination, records=CARS_X, output_format="csv").execute(task_context)
    with monkeypatch.context() as patched:
        die_after_the_table(patched)
        with pytest.raises(OSError, match="worker lost"):
            collect(x, destination, records=CARS_X, output_format="csv").execute(task_context)
    summary = repair(destination).execute(task_context)
    assert summary["failed_rows"] == 0 and summary["attempts"] == 1
    assert inputs_of(destination, "csv") == [car["hp"] for car in CARS_X]


def test_a_table_whose_inputs_were_changed_is_refused(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    destination = tmp_path / "scores"
    faults({"service": "mtService", "failRows": [1]})
    x = submitted(task_context, CARS_X)
    collect(x, destination, records=CARS_X, output_format="csv").execute(task_context)
    table = pd.read_csv(destination / "outputs.csv")
    table.loc[1, "input_hp"] = 999
    table.to_csv(destination / "outputs.csv", index=False)
    batches = server_batches()
    with pytest.raises(MrsDeployRecordsError, match=r"changed since it was written"):
        repair(destination).execute(task_context)
    assert server_batches() == batches
