"""Records read from a real database (SQLite through the common SQL hook) in chunks."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.api.models import ParameterDefinition
from airflow_provider.batch_set import BatchSet
from airflow_provider.exceptions import MrsDeployRecordsError
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import MrsDeploySubmitBatchOperator
from airflow_provider.records.check import prepare_records
from airflow_provider.records.encode import iter_encoded_records
from airflow_provider.records.sql import read_sql_records
from airflow_provider.sample_data import mtcars_csv_path


@pytest.fixture
def cars_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "cars.db"
    with sqlite3.connect(path) as db:
        pd.read_csv(mtcars_csv_path()).to_sql("cars", db, index=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CARS_DB", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    return "cars_db"


def test_chunks_are_joined_in_order(cars_db: str) -> None:
    frame = read_sql_records(cars_db, "SELECT model, hp, wt FROM cars ORDER BY hp", chunk_rows=5)
    expected = pd.read_csv(mtcars_csv_path()).sort_values("hp", kind="stable")
    assert list(frame["model"]) == list(expected["model"])
    assert len(frame) == 32


def test_submit_from_sql(mrsdeploy_conn: str, cars_db: str, task_context: Any) -> None:
    operator = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="mtService",
        service_version="v1.0.0",
        records_sql="SELECT model, hp, wt FROM cars WHERE cyl = 4",
        sql_conn_id=cars_db,
        sql_chunk_rows=4,
        wait_for_completion=True,
        poll_interval=0.1,
    )
    batch_set = BatchSet.from_json(operator.execute(task_context))
    assert [(p.first_row, p.row_count) for p in batch_set.parts] == [(0, 11)]
    hook = MrsDeployHook()
    try:
        status = hook.get_batch_status("mtService", "v1.0.0", batch_set.batch_ids[0])
    finally:
        hook.close()
    assert status.total_item_count == 11  # the 4-cylinder cars of mtcars


def test_exactly_one_source_is_required() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        MrsDeploySubmitBatchOperator(task_id="t", service_name="s", service_version="v")
    with pytest.raises(ValueError, match="sql_conn_id"):
        MrsDeploySubmitBatchOperator(
            task_id="t", service_name="s", service_version="v", records_sql="select 1"
        )


@pytest.mark.parametrize("statement", ["UPDATE cars SET hp = hp", "CREATE TABLE other (a INT)"])
def test_a_statement_that_returns_no_rows_is_named(cars_db: str, statement: str) -> None:
    """pandas alone says only "'NoneType' object is not iterable"."""
    with pytest.raises(MrsDeployRecordsError, match="query that returns rows, such as SELECT"):
        read_sql_records(cars_db, statement)


def test_decimal_values_keep_their_exact_value() -> None:
    """A DECIMAL/NUMERIC column arrives as ``Decimal`` objects (pandas is told not to make
    floats of them): whole numbers beyond 2**53 reach the body unrounded, others become floats,
    a missing one is named with its row, and one beyond 64 bits is refused by the integer
    check."""
    big = 2**53 + 1  # the first integer a float cannot hold
    frame = pd.DataFrame(
        {
            "id": [Decimal(big), Decimal("7"), None],
            "price": [Decimal("0.10"), Decimal("3"), Decimal("2.5")],
            "name": ["a", "b", "c"],
        }
    )
    inputs = [ParameterDefinition("id", "integer"), ParameterDefinition("price", "numeric")]
    prepared = prepare_records(frame.iloc[:2], inputs)
    body = json.loads(b"".join(iter_encoded_records(prepared)))
    assert body == [{"id": big, "price": 0.1}, {"id": 7, "price": 3}]
    assert [type(row["price"]) for row in body] == [float, int]
    with pytest.raises(MrsDeployRecordsError, match=r"row 2, column 'id': value is missing"):
        prepare_records(frame, inputs)
    beyond = pd.DataFrame({"id": [Decimal(2**63)], "price": [Decimal(1)]})
    with pytest.raises(MrsDeployRecordsError, match="outside the 64-bit integer range"):
        prepare_records(beyond, inputs)
