"""A repair that takes the failed rows' inputs from the table's input columns re-sends exactly
what was submitted, in every table format, for every input type: vectors, matrices and data
frames (stored as JSON text), and ``character`` inputs that look like numbers or missing
values (kept as text when a CSV table is read back). Checked against the reference server's
``typesService``, which returns its inputs, and against Submit's fingerprint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.exceptions import MrsDeployRecordsError
from airflow_provider.outputs import table as table_module
from tests.faults.helpers import submit
from tests.operators.test_collect import collect
from tests.operators.test_repair import manifest_of, repair

TYPES = ("typesService", "v1.0.0")
COMPOSITES = ("v", "m", "df")
ROWS = [
    {
        "flag": True,
        "x": 1.5,
        "k": 1,
        "s": "007",  # a zip code: text that a CSV reader would make the number 7
        "v": [1, 2],
        "m": [[1, 2], [3, 4]],
        "df": {"a": [1, 2], "b": ["x", "y"]},
    },
    {
        "flag": False,
        "x": 2.0,
        "k": 2,
        "s": "NA",  # text a CSV reader would take for a missing value
        "v": [3.5, -0.0],
        "m": [[5, 6], [7, 8]],
        "df": {"a": [3, 4], "b": ["z", "w"]},
    },
    {
        "flag": True,
        "x": 3.25,
        "k": 3,
        "s": "two\rlines",  # a lone carriage return, which must not split the CSV row
        "v": ["é", '"'],
        "m": [[9.5, 1], [2, 3]],
        "df": {"a": [5, 6], "b": ["", "v"]},
    },
]
#: Rows whose composite values Arrow can store as typed nested lists (each column holds one
#: kind of number), as an earlier release's Parquet table held them.
UNIFORM_ROWS = [
    {
        "flag": i % 2 == 0,
        "x": i + 0.5,
        "k": i,
        "s": f"00{i}",
        "v": [i, i + 1],
        "m": [[i, 1], [2, i]],
        "df": {"a": [i, 2 * i], "b": ["x", "y"]},
    }
    for i in range(3)
]
FORMATS = ["parquet", "csv", "jsonl"]


def typed_submission(
    context: Any, faults: Any, fail_rows: list[int], rows: list[dict[str, Any]] = ROWS
) -> dict[str, Any]:
    """Submit ``rows`` to typesService (fingerprinted), ``fail_rows`` failing on their first
    run."""
    faults({"service": TYPES[0], "failRows": fail_rows, "failOnce": True})
    return submit(context, rows, TYPES, wait_for_completion=True, poll_interval=0.1)


def table_rows(destination: Path, output_format: str) -> list[dict[str, Any]]:
    """The table's rows, every text read as written (CSV holds no types)."""
    path = destination / f"outputs.{output_format}"
    if output_format == "jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if output_format == "csv":
        frame = pd.read_csv(path, dtype={"s": str, "input_s": str}, na_filter=False)
    else:
        frame = pd.read_parquet(path)
    return [dict(row) for row in frame.astype(object).to_dict("records")]


def assert_outputs_are_the_submitted_inputs(
    rows: list[dict[str, Any]], submitted: list[dict[str, Any]] = ROWS
) -> None:
    """typesService returns its inputs: each row's outputs are what was sent for it."""
    for row, sent in zip(rows, submitted, strict=True):
        assert row["success"], row
        assert row["s"] == sent["s"]
        assert bool(row["flag"]) is sent["flag"]
        assert row["x"] == sent["x"] and row["k"] == sent["k"]
        for name in COMPOSITES:
            assert json.loads(row[name]) == sent[name], (name, row[name])


@pytest.mark.parametrize("output_format", FORMATS)
def test_the_table_inputs_are_resent_as_submitted(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path, output_format: str
) -> None:
    destination = tmp_path / "scores"
    batch_set = typed_submission(task_context, faults, fail_rows=[0, 1, 2])
    collect(batch_set, destination, records=ROWS, output_format=output_format).execute(task_context)
    assert manifest_of(destination)["failed_row_indexes"] == [0, 1, 2]

    summary = repair(destination).execute(task_context)  # no records=: from the table

    assert summary["failed_rows"] == 0 and summary["attempts"] == 1
    rows = table_rows(destination, output_format)
    assert_outputs_are_the_submitted_inputs(rows)
    # The merged table keeps the inputs, composite ones as JSON text in every format.
    for row, sent in zip(rows, ROWS, strict=True):
        assert row["input_s"] == sent["s"]
        for name in COMPOSITES:
            assert isinstance(row[f"input_{name}"], str)
            assert json.loads(row[f"input_{name}"]) == sent[name]


@pytest.mark.parametrize("output_format", FORMATS)
def test_a_composite_column_keeps_every_value_as_json_text(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path, output_format: str
) -> None:
    """Collect writes composite inputs as JSON text, so the table reads back the same in
    every format; scalar inputs stay values."""
    destination = tmp_path / "scores"
    batch_set = typed_submission(task_context, faults, fail_rows=[])
    collect(batch_set, destination, records=ROWS, output_format=output_format).execute(task_context)
    rows = table_rows(destination, output_format)
    assert [row["input_v"] for row in rows] == ["[1,2]", "[3.5,-0.0]", '["é","\\""]']
    assert rows[0]["input_m"] == "[[1,2],[3,4]]"
    assert [row["input_k"] for row in rows] == [1, 2, 3]
    assert [row["input_s"] for row in rows] == ["007", "NA", "two\rlines"]


@pytest.mark.parametrize("output_format", ["parquet", "jsonl"])
def test_a_table_of_the_previous_release_still_repairs(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    output_format: str,
) -> None:
    """Earlier releases put composite inputs into the table as they were: JSON Lines kept
    them as JSON values, Parquet as nested lists (only when Arrow could type them, as for
    UNIFORM_ROWS). Both read back as the values sent."""
    rows = ROWS if output_format == "jsonl" else UNIFORM_ROWS
    destination = tmp_path / "scores"
    batch_set = typed_submission(task_context, faults, fail_rows=[1], rows=rows)
    with monkeypatch.context() as previous_release:
        previous_release.setattr(table_module, "stored_input_column", lambda values: values)
        collect(batch_set, destination, records=rows, output_format=output_format).execute(
            task_context
        )
    if output_format == "jsonl":
        first = json.loads((destination / "outputs.jsonl").read_text().splitlines()[0])
        assert first["input_m"] == ROWS[0]["m"]  # a JSON value, not JSON text

    summary = repair(destination).execute(task_context)

    assert summary["failed_rows"] == 0 and summary["attempts"] == 1
    assert_outputs_are_the_submitted_inputs(table_rows(destination, output_format), rows)


def test_a_previous_release_csv_table_with_python_text_asks_for_records(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An earlier release wrote composite inputs to CSV as Python text (``{'a': [1, 2]}``),
    which is not the JSON sent: refused naming the cell, before anything is sent; with the
    submitted records the repair goes on."""
    destination = tmp_path / "scores"
    batch_set = typed_submission(task_context, faults, fail_rows=[1])
    with monkeypatch.context() as previous_release:
        previous_release.setattr(table_module, "stored_input_column", lambda values: values)
        collect(batch_set, destination, records=ROWS, output_format="csv").execute(task_context)

    with pytest.raises(MrsDeployRecordsError, match=r"input_v.* not JSON text.*records="):
        repair(destination).execute(task_context)
    assert manifest_of(destination)["failed_row_indexes"] == [1]

    summary = repair(destination, records=ROWS).execute(task_context)
    assert summary["failed_rows"] == 0
    assert_outputs_are_the_submitted_inputs(table_rows(destination, "csv"))
