"""Records read from a real database (SQLite through the common SQL hook) in chunks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.batch_set import BatchSet
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import MrsDeploySubmitBatchOperator
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
