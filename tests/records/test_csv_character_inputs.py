"""A CSV or TSV column that feeds a ``character`` input is read as text, as written: a zip code
``007`` is sent as ``"007"`` (the reader made it the number 7, which the check then refused
with advice about numbers). Parquet and DataFrames carry their own types and are unchanged."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.api import ParameterDefinition
from airflow_provider.batch_set import BatchSet
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import MrsDeploySubmitBatchOperator
from airflow_provider.records import (
    MrsDeployRecordsError,
    encode_records,
    load_records,
    prepare_records,
)
from airflow_provider.records.check import text_inputs

ZIP_N = [ParameterDefinition("zip", "character"), ParameterDefinition("n", "integer")]
ECHO = ("echoService", "v1.0.0")


def write(path: Path, text: str) -> str:
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return str(path)


@pytest.mark.parametrize(
    ("name", "sep"), [("zips.csv", ","), ("zips.tsv", "\t"), ("zips.csv.gz", ",")]
)
def test_character_columns_keep_their_text_and_the_others_their_numbers(
    tmp_path: Path, name: str, sep: str
) -> None:
    lines = ["zip,n,hp", "007,1,110", "00501,2,93", "1e3,3,66"]
    path = write(tmp_path / name, "".join(line.replace(",", sep) + "\n" for line in lines))
    frame = load_records(path, text_columns=text_inputs(ZIP_N))
    assert frame["zip"].tolist() == ["007", "00501", "1e3"]
    assert frame["n"].tolist() == [1, 2, 3] and frame["hp"].tolist() == [110, 93, 66]
    assert json.loads(encode_records(prepare_records(frame, ZIP_N))) == [
        {"zip": "007", "n": 1},
        {"zip": "00501", "n": 2},
        {"zip": "1e3", "n": 3},
    ]


def test_an_empty_cell_of_a_character_column_is_still_missing(tmp_path: Path) -> None:
    path = write(tmp_path / "zips.csv", "zip,n\n007,1\n,2\n")
    frame = load_records(path, text_columns=["zip"])
    with pytest.raises(MrsDeployRecordsError, match="row 1, column 'zip': value is missing"):
        prepare_records(frame, ZIP_N)


def test_a_character_refusal_gives_no_advice_about_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "zips.csv", "zip,n\n007,1\n")
    with pytest.raises(MrsDeployRecordsError) as info:
        prepare_records(load_records(path), ZIP_N)  # read without text columns
    message = str(info.value)
    assert "row 0, column 'zip': 7 is not a string" in message
    assert "a character input takes only strings" in message and "numeric" not in message


def test_text_inputs_are_the_character_ones() -> None:
    inputs = [*ZIP_N, ParameterDefinition("name", "Character"), ParameterDefinition("v", "vector")]
    assert text_inputs(inputs) == ("zip", "name")


@pytest.mark.parametrize("kind", ["parquet", "frame"])
def test_typed_sources_are_not_changed_by_text_columns(tmp_path: Path, kind: str) -> None:
    frame = pd.DataFrame({"zip": [7, 42], "n": [1, 2]})
    source: Any = frame
    if kind == "parquet":
        source = str(tmp_path / "zips.parquet")
        frame.to_parquet(source)
    loaded = load_records(source, text_columns=["zip"])
    assert loaded["zip"].tolist() == [7, 42]
    with pytest.raises(MrsDeployRecordsError, match="row 0, column 'zip': 7 is not a string"):
        prepare_records(loaded, ZIP_N)


def submitted_and_done(path: str, task_context: Any) -> dict[str, Any]:
    """Submit the records file to echoService and wait on the worker; the batch set."""
    operator = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name=ECHO[0],
        service_version=ECHO[1],
        records=path,
        deferrable=False,
        wait_for_completion=True,
        poll_interval=0.2,
    )
    return dict(operator.execute(task_context))


def test_submit_sends_a_csv_zip_code_as_written(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """echoService (``text`` character, ``n`` integer) repeats what it is sent."""
    path = write(tmp_path / "echo.csv", "text,n\n007,2\n0042,1\n")
    (batch_id,) = BatchSet.from_json(submitted_and_done(path, task_context)).batch_ids
    hook = MrsDeployHook()
    try:
        results = hook.get_batch_status(*ECHO, batch_id).results
    finally:
        hook.close()
    assert [row.output_parameters["echo"] for row in results] == ["007 007", "0042"]


def test_collect_given_the_same_csv_recognises_the_rows_submitted(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """Collect reads ``records=`` with the character columns as text too: the fingerprint of
    the rows it reads matches the one Submit recorded, and the inputs land as written."""
    from airflow_provider.operators import MrsDeployCollectBatchOperator

    path = write(tmp_path / "echo.csv", "text,n\n007,2\n0042,1\n")
    batch_set = submitted_and_done(path, task_context)
    landed = tmp_path / "landed"
    MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=batch_set,
        destination=str(landed),
        records=path,
        output_format="csv",
    ).execute(task_context)
    table = pd.read_csv(landed / "outputs.csv", dtype=str)
    assert table["input_text"].tolist() == ["007", "0042"]
