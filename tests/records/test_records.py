from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pandas as pd
import pytest

from airflow_provider.api import ParameterDefinition
from airflow_provider.records import (
    MrsDeployRecordsError,
    encode_records,
    infer_format,
    iter_encoded_records,
    load_records,
    prepare_records,
)
from airflow_provider.sample_data import mtcars_csv_path

HP_WT = (ParameterDefinition("hp", "numeric"), ParameterDefinition("wt", "numeric"))


def test_mtcars_csv_prepares_to_the_two_inputs_and_drops_the_rest() -> None:
    prepared = prepare_records(load_records(mtcars_csv_path()), HP_WT)
    assert prepared.row_count == 32
    assert list(prepared.frame.columns) == ["hp", "wt"]
    assert "mpg" in prepared.dropped_columns and "model" in prepared.dropped_columns
    body = json.loads(encode_records(prepared))
    assert body[0] == {"hp": 110, "wt": 2.62}
    assert len(body) == 32


def test_missing_column_lists_expected_and_found() -> None:
    with pytest.raises(MrsDeployRecordsError) as err:
        prepare_records(pd.DataFrame({"hp": [1], "weight": [2.0]}), HP_WT)
    text = str(err.value)
    assert "['wt']" in text and "['hp', 'weight']" in text


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_name_row_and_column(bad: float) -> None:
    frame = pd.DataFrame({"hp": [110.0, 120.0, 130.0], "wt": [2.0, bad, 3.0]})
    with pytest.raises(MrsDeployRecordsError, match=r"row 1, column 'wt'"):
        prepare_records(frame, HP_WT)


def test_non_json_values_in_object_columns_are_reported() -> None:
    frame = pd.DataFrame({"hp": [110, "fast"], "wt": [2.0, 3.0]})
    with pytest.raises(MrsDeployRecordsError, match=r"row 1, column 'hp': 'fast' is not a number"):
        prepare_records(frame, HP_WT)


def test_list_of_dicts_with_composite_types() -> None:
    inputs = (
        ParameterDefinition("name", "character"),
        ParameterDefinition("flag", "logical"),
        ParameterDefinition("n", "integer"),
        ParameterDefinition("v", "vector"),
    )
    rows = [
        {"name": "a", "flag": True, "n": 1, "v": [1, 2]},
        {"name": "b", "flag": False, "n": 2, "v": np.array([3.5])},
    ]
    body = json.loads(encode_records(prepare_records(load_records(rows), inputs)))
    assert body == [
        {"name": "a", "flag": True, "n": 1, "v": [1, 2]},
        {"name": "b", "flag": False, "n": 2, "v": [3.5]},
    ]


def test_integer_column_rejects_fractions_and_accepts_integral_floats() -> None:
    inputs = (ParameterDefinition("n", "integer"),)
    assert json.loads(encode_records(prepare_records(pd.DataFrame({"n": [1.0, 2.0]}), inputs))) == [
        {"n": 1},
        {"n": 2},
    ]
    with pytest.raises(MrsDeployRecordsError, match=r"row 1, column 'n': 2\.5 is not an integer"):
        prepare_records(pd.DataFrame({"n": [1.0, 2.5]}), inputs)


def test_vector_with_nan_inside_is_rejected() -> None:
    inputs = (ParameterDefinition("v", "vector"),)
    with pytest.raises(MrsDeployRecordsError, match="row 0, column 'v'"):
        prepare_records(load_records([{"v": [1.0, float("nan")]}]), inputs)


def test_chunked_encoding_is_one_valid_array() -> None:
    frame = pd.DataFrame({"hp": np.arange(25, dtype=float), "wt": np.ones(25)})
    chunks = list(iter_encoded_records(prepare_records(frame, HP_WT), chunk_rows=10))
    assert len(chunks) > 3
    decoded = json.loads(b"".join(chunks))
    assert [row["hp"] for row in decoded] == list(range(25))


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.csv", "csv"), ("s3://b/a.TSV", "tsv"), ("x.parquet", "parquet"), ("y.jsonl.gz", "jsonl")],
)
def test_infer_format(name: str, fmt: str) -> None:
    assert infer_format(name) == fmt


def test_unknown_suffix_asks_for_records_format() -> None:
    with pytest.raises(MrsDeployRecordsError, match="records_format"):
        infer_format("data.xlsx")


@pytest.mark.parametrize("suffix", ["csv", "tsv", "parquet", "jsonl"])
def test_files_of_every_format_round_trip(tmp_path, suffix: str) -> None:
    frame = pd.DataFrame({"hp": [110, 93], "wt": [2.62, 2.32], "model": ["a", "b"]})
    path = tmp_path / f"cars.{suffix}"
    if suffix == "csv":
        frame.to_csv(path, index=False)
    elif suffix == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif suffix == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    loaded = load_records(str(path))
    assert loaded[["hp", "wt"]].to_dict("records") == frame[["hp", "wt"]].to_dict("records")


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(MrsDeployRecordsError, match="does not exist"):
        load_records(str(tmp_path / "nope.csv"))


def test_non_mapping_record_is_rejected() -> None:
    with pytest.raises(MrsDeployRecordsError, match="record 1 is a list"):
        load_records([{"hp": 1}, [1, 2]])


#: A string JSON can escape and UTF-8 cannot encode, as ``json.loads`` gives it back.
LONE = "car \udc80"
ROWS = [{"hp": 110, "wt": 2.62, "model": LONE}, {"hp": 93, "wt": 2.32, "model": "b"}]


def jsonl_file(tmp_path, name: str, lines: list[str]) -> str:
    text = "".join(line + "\n" for line in lines).encode("ascii")
    path = tmp_path / name
    path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    return str(path)


@pytest.mark.parametrize("source", ["list", "cars.jsonl", "cars.jsonl.gz"])
def test_a_lone_surrogate_is_kept_as_it_is_in_an_object_dataframe(tmp_path, source: str) -> None:
    """pandas' string type refuses such a string with a bare UnicodeEncodeError; a list and a
    JSON Lines file load as a DataFrame with an object column does, and are sent the same way
    (escaped). The other columns are typed as without it."""
    if source == "list":
        loaded = load_records(ROWS)
    else:
        loaded = load_records(jsonl_file(tmp_path, source, [json.dumps(row) for row in ROWS]))
    assert loaded["model"].tolist() == [LONE, "b"] and loaded["model"].dtype == object
    clean = load_records([dict(row, model="a") for row in ROWS])
    assert loaded.drop(columns="model").dtypes.equals(clean.drop(columns="model").dtypes)
    as_object = pd.DataFrame({**{k: [r[k] for r in ROWS] for k in ("hp", "wt")}})
    as_object["model"] = pd.Series([LONE, "b"], dtype=object)
    inputs = [*HP_WT, ParameterDefinition("model", "character")]
    sent = encode_records(prepare_records(loaded, inputs))
    assert sent == encode_records(prepare_records(as_object, inputs))
    assert json.loads(sent) == ROWS


@pytest.mark.parametrize("first", [ROWS[1], ROWS[0]], ids=["plain", "lone-surrogate"])
def test_a_json_lines_file_pandas_cannot_read_names_its_bad_line(tmp_path, first: dict) -> None:
    """pandas says only that something failed (a TypeError for a line that is an array); the
    file is read again line by line, which names the line and what it should be."""
    path = jsonl_file(tmp_path, "cars.jsonl", [json.dumps(first), "[1, 2]"])
    with pytest.raises(MrsDeployRecordsError, match=r"line 2 is a JSON list, expected an object"):
        load_records(path)
    path = jsonl_file(tmp_path, "more.jsonl", [json.dumps(first), "", '{"hp": '])
    with pytest.raises(MrsDeployRecordsError, match=r"line 3 is not JSON"):
        load_records(path)
