"""A repair of a CSV destination writes the record columns the service does not take back as
they were written, in every row: read back by type inference, a zip code ``00501`` became
``501``, the text ``NA`` an empty cell and ``1e3`` a float, in rows the repair never touched."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from airflow_provider.operators import MrsDeployCollectBatchOperator
from tests.faults.helpers import submit
from tests.operators.test_repair import SERVICE, repair

ROWS = [
    {"hp": 110, "wt": 2.62, "zip": "00501", "note": "NA", "code": "1e3"},
    {"hp": 93, "wt": 2.32, "zip": "02134", "note": "ok", "code": "7"},
    {"hp": 245, "wt": 3.84, "zip": "10001", "note": "", "code": "x"},
]
KEPT = ["input_zip", "input_note", "input_code"]


def kept_columns(table: Path) -> list[dict[str, str]]:
    rows = csv.DictReader(io.StringIO(table.read_text()))
    return [{name: row[name] for name in KEPT} for row in rows]


def test_record_columns_are_kept_as_written_through_a_repair(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    faults({"service": SERVICE[0], "failRows": [1], "failOnce": True})
    batch_set = submit(task_context, ROWS, SERVICE, wait_for_completion=True, poll_interval=0.1)
    destination = tmp_path / "scores"
    MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=batch_set,
        destination=str(destination),
        records=ROWS,
        output_format="csv",
    ).execute(task_context)
    table = destination / "outputs.csv"
    before = kept_columns(table)
    assert before[0] == {"input_zip": "00501", "input_note": "NA", "input_code": "1e3"}

    summary = repair(destination).execute(task_context)

    assert summary["failed_rows"] == 0
    assert kept_columns(table) == before
