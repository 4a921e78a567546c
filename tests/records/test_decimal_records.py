"""Decimal values in records (Parquet and Arrow ``decimal128`` columns, ``Decimal`` objects)
are sent as the numbers they are: whole ones exactly as integers, others as floats. Before,
a Parquet decimal column was refused as "not a number", an Arrow-backed one was sent as JSON
strings, and one bound for an ``integer`` input was rounded through float64."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider.api.models import ParameterDefinition
from airflow_provider.exceptions import MrsDeployRecordsError
from airflow_provider.records.check import prepare_records
from airflow_provider.records.encode import encode_records
from airflow_provider.records.read import load_records

BIG = 2**53 + 1  # the first integer a float cannot hold
INPUTS = [ParameterDefinition("id", "integer"), ParameterDefinition("price", "numeric")]


def sent(records: object) -> list[dict[str, object]]:
    return list(json.loads(encode_records(prepare_records(load_records(records), INPUTS))))


def decimal_table() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([Decimal(BIG), Decimal(7)], type=pa.decimal128(20, 0)),
            "price": pa.array([Decimal("1.50"), Decimal("2.25")], type=pa.decimal128(10, 2)),
        }
    )


EXPECTED = [{"id": BIG, "price": 1.5}, {"id": 7, "price": 2.25}]


def test_a_parquet_decimal_file_is_sent_as_numbers(tmp_path: Path) -> None:
    path = tmp_path / "prices.parquet"
    pq.write_table(decimal_table(), path)
    assert sent(str(path)) == EXPECTED


def test_an_arrow_backed_decimal_frame_is_sent_as_numbers_not_strings() -> None:
    frame = decimal_table().to_pandas(types_mapper=pd.ArrowDtype)
    assert isinstance(frame["price"].dtype, pd.ArrowDtype)
    assert sent(frame) == EXPECTED


def test_decimal_objects_are_sent_as_numbers() -> None:
    assert sent([{"id": Decimal(BIG), "price": Decimal("1.50")}]) == [EXPECTED[0]]


def test_a_fractional_decimal_for_an_integer_input_is_refused() -> None:
    with pytest.raises(MrsDeployRecordsError, match=r"row 0, column 'id': 2\.5 is not an"):
        sent([{"id": Decimal("2.5"), "price": Decimal(1)}])


def test_a_complex_column_is_refused_by_name_not_at_encoding() -> None:
    frame = pd.DataFrame({"id": [1], "price": np.array([1 + 2j])})
    with pytest.raises(MrsDeployRecordsError, match=r"column 'price': \(1\+2j\) is not a number"):
        sent(frame)
