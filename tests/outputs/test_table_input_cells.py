"""The records put beside the outputs read back as the values that were sent, in every table
format: a column holding vectors, matrices or data frames is JSON text (every value of it),
and CSV quotes a text holding a lone carriage return instead of splitting its row."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_provider.api import ExecutionResult
from airflow_provider.exceptions import MrsDeployRecordsError
from airflow_provider.outputs import OutputFormat, OutputsTable, RenderedTable
from airflow_provider.outputs.table import decode_input_columns
from airflow_provider.records.read import frame_of_rows

INPUT_TYPES = {"v": "vector", "m": "matrix", "df": "data.frame", "s": "character", "n": "numeric"}
INPUTS = pd.DataFrame(
    {
        "v": [[1, 2], (3.5,), np.array([4, 5]), None, "word", 7],
        "m": [[[1, 2], [3, 4]], np.array([[5, 6]]), [[0.1]], [[1]], [["é"]], [[2]]],
        "df": [{"a": [1]}, {"a": np.array([2, 3])}, {"b": ["x"]}, {}, {"a": []}, {"c": [None]}],
        "s": ["007", "NA", "", "two\rlines", 'say "hi"', "x,y"],
        "n": [1.5, 2.0, -0.0, 1e300, 3.0, 4.25],
    }
)
#: What the service was sent for each cell (numpy arrays and tuples go out as JSON arrays).
SENT: dict[str, list[Any]] = {
    "v": [[1, 2], [3.5], [4, 5], None, "word", 7],
    "m": [[[1, 2], [3, 4]], [[5, 6]], [[0.1]], [[1]], [["é"]], [[2]]],
    "df": [{"a": [1]}, {"a": [2, 3]}, {"b": ["x"]}, {}, {"a": []}, {"c": [None]}],
}


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def built(inputs: pd.DataFrame = INPUTS) -> pd.DataFrame:
    table = OutputsTable(["answer"])
    table.add([ExecutionResult(True, output_parameters={"answer": i}) for i in range(len(inputs))])
    return table.build(inputs)


def read_back(frame: pd.DataFrame, fmt: OutputFormat) -> pd.DataFrame:
    """The table written as ``fmt`` and read as a repair reads it: CSV as pandas reads it,
    then the ``character`` input read again as the text written."""
    handle = io.BytesIO()
    RenderedTable(frame, fmt).write(handle)
    handle.seek(0)
    if fmt is OutputFormat.PARQUET:
        return pd.read_parquet(handle)
    if fmt is OutputFormat.CSV:
        table = pd.read_csv(io.BytesIO(handle.getvalue()))
        text = pd.read_csv(handle, usecols=["input_s"], dtype=str, na_filter=False)
        return table.assign(input_s=text["input_s"])
    return frame_of_rows([json.loads(line) for line in handle.read().splitlines()])


def test_a_composite_input_column_is_json_text_and_other_columns_are_as_given() -> None:
    table = built()
    assert table["input_v"].tolist() == ["[1,2]", "[3.5]", "[4,5]", None, '"word"', "7"]
    assert table["input_m"].tolist()[:2] == ["[[1,2],[3,4]]", "[[5,6]]"]
    assert table["input_df"].tolist()[1] == '{"a":[2,3]}'
    assert table["input_s"].tolist() == INPUTS["s"].tolist()
    assert table["input_n"].tolist() == INPUTS["n"].tolist()
    assert INPUTS["v"].tolist()[0] == [1, 2]  # the records themselves are left alone


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_inputs_read_back_as_the_values_sent_in_every_format(fmt: OutputFormat) -> None:
    table = read_back(built(), fmt)
    inputs = table[[c for c in table.columns if str(c).startswith("input_")]]
    decoded = decode_input_columns(inputs.rename(columns=lambda c: c[6:]), INPUT_TYPES)
    for name, values in SENT.items():
        got = decoded[name].tolist()
        assert [None if missing(v) else v for v in got] == values, name
    assert decoded["s"].tolist() == INPUTS["s"].tolist()
    assert decoded["n"].tolist() == INPUTS["n"].tolist()


def test_earlier_tables_native_and_nested_values_are_made_plain() -> None:
    """JSON Lines of an earlier release holds JSON values; Parquet nested numpy arrays."""
    inputs = pd.DataFrame(
        {
            "v": [[1, 2], np.array([3, 4])],
            "m": [np.array([np.array([1, 2]), np.array([3, 4])], dtype=object), [[5]]],
            "df": [{"a": np.array([1, 2])}, {"a": [3]}],
        }
    )
    decoded = decode_input_columns(inputs, INPUT_TYPES)
    assert decoded["v"].tolist() == [[1, 2], [3, 4]]
    assert decoded["m"].tolist() == [[[1, 2], [3, 4]], [[5]]]
    assert decoded["df"].tolist() == [{"a": [1, 2]}, {"a": [3]}]
    assert type(decoded["v"].tolist()[1][0]) is int


def test_python_text_of_an_earlier_csv_table_is_refused_naming_the_cell() -> None:
    inputs = pd.DataFrame({"df": ['{"a":[1]}', "{'a': [3, 4]}"]})
    with pytest.raises(MrsDeployRecordsError, match=r"row 1 of .*'input_df'.* not JSON text"):
        decode_input_columns(inputs, INPUT_TYPES)


def test_a_lone_carriage_return_is_quoted_in_csv() -> None:
    frame = built(INPUTS[["s"]])
    handle = io.BytesIO()
    RenderedTable(frame, OutputFormat.CSV).write(handle)
    assert b'"two\rlines"' in handle.getvalue()
    back = pd.read_csv(io.BytesIO(handle.getvalue()), dtype={"input_s": str}, na_filter=False)
    assert back["index"].tolist() == list(range(len(INPUTS)))
    assert back["input_s"].tolist() == INPUTS["s"].tolist()


def test_csv_without_a_carriage_return_keeps_its_line_ends() -> None:
    frame = built(INPUTS[["n"]])
    handle = io.BytesIO()
    RenderedTable(frame, OutputFormat.CSV).write(handle)
    assert handle.getvalue() == frame.to_csv(index=False).encode("utf-8")
    assert b"\r" not in handle.getvalue()
