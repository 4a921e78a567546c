"""A retried Submit re-attaches to the earlier try's batches only when they were sent the
records this try reads: a source that changed between tries (a file rewritten by an upstream
task run again, a query over rows that changed) is submitted afresh and the earlier batches are
cancelled, instead of the retry silently waiting on old rows."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.batch_set import BatchSet
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import MrsDeploySubmitBatchOperator
from airflow_provider.operators.submission import STATE_KEY
from tests.support.state_store import MemoryStateStore

#: ``echoService`` takes ``text`` (character) and ``n`` (integer): a CSV's text column is
#: read as text on both tries, so "007" stays "007".
ROWS = [{"text": "007", "n": 1}, {"text": "b", "n": 2}, {"text": "c", "n": 3}]


def submit(records: Any = None, **kwargs: Any) -> MrsDeploySubmitBatchOperator:
    return MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="echoService",
        service_version="v1.0.0",
        records=records,
        parallel_count=1,
        **kwargs,
    )


def server_batches() -> set[str]:
    hook = MrsDeployHook()
    try:
        return set(hook.list_batches("echoService", "v1.0.0"))
    finally:
        hook.close()


def first_try_dies(operator: MrsDeploySubmitBatchOperator, context: dict[str, Any]) -> BatchSet:
    """Run a try that starts its batches, then dies at its deadline while they run on."""
    with pytest.raises(Exception, match="deadline"):
        operator.execute(context)
    recorded = BatchSet.from_json(context["task_state_store"].values[STATE_KEY])
    assert recorded.records_sha256 is not None
    assert set(recorded.batch_ids) <= server_batches()
    return recorded


DIES = {"wait_for_completion": True, "timeout": 0.1, "cancel_on_timeout": False}


def test_a_rewritten_file_is_submitted_again_and_the_old_batches_cancelled(
    mrsdeploy_conn: str,
    task_context: dict[str, Any],
    slow_store: MemoryStateStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "records.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    earlier = first_try_dies(submit(str(path), max_records_per_batch=2, **DIES), task_context)
    assert len(earlier.batch_ids) == 2

    changed = [*ROWS[:2], {"text": "c", "n": 30}]  # one value of the last row changed
    pd.DataFrame(changed).to_csv(path, index=False)
    with caplog.at_level(logging.INFO):
        fresh = BatchSet.from_json(submit(str(path), max_records_per_batch=2).execute(task_context))

    assert not set(fresh.batch_ids) & set(earlier.batch_ids)
    assert not set(earlier.batch_ids) & server_batches()  # cancelled: a cancel deletes
    assert fresh.records_sha256 not in (None, earlier.records_sha256)
    messages = [record.getMessage() for record in caplog.records]
    assert any("other records than this try reads" in m for m in messages), messages
    assert not any("Re-attaching" in m for m in messages), messages


def test_the_same_file_read_again_re_attaches(
    mrsdeploy_conn: str, task_context: dict[str, Any], slow_store: MemoryStateStore, tmp_path: Path
) -> None:
    """The check must recognise the very rows it sent, split into several batches and with a
    text column that looks like a number: otherwise every retry would start a second copy."""
    path = tmp_path / "records.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    earlier = first_try_dies(submit(str(path), max_records_per_batch=2, **DIES), task_context)
    retry = submit(str(path), max_records_per_batch=2, wait_for_completion=True, poll_interval=0.2)
    assert BatchSet.from_json(retry.execute(task_context)) == earlier
    assert retry._loaded is None  # what was read to compare is not held any more


def test_records_that_cannot_be_read_again_keep_the_earlier_batches(
    mrsdeploy_conn: str,
    task_context: dict[str, Any],
    slow_store: MemoryStateStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A file removed once submitted: the batches were sent whole, so waiting on them loses
    nothing, and the warning says the rows could not be compared."""
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    earlier = first_try_dies(submit(str(path), **DIES), task_context)
    path.unlink()
    capsys.readouterr()
    again = BatchSet.from_json(submit(str(path)).execute(task_context))
    assert again == earlier
    assert set(earlier.batch_ids) <= server_batches()
    logged = capsys.readouterr().out  # the task's own log
    assert "Could not read the records again" in logged and "does not exist" in logged


def test_a_query_whose_rows_changed_is_submitted_again(
    mrsdeploy_conn: str,
    task_context: dict[str, Any],
    slow_store: MemoryStateStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = tmp_path / "rows.db"
    with sqlite3.connect(database) as db:
        pd.DataFrame(ROWS).to_sql("rows", db, index=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ROWS_DB", json.dumps({"conn_type": "sqlite", "host": str(database)})
    )
    query = {"records_sql": "SELECT text, n FROM rows ORDER BY n", "sql_conn_id": "rows_db"}
    earlier = first_try_dies(submit(**query, **DIES), task_context)
    with sqlite3.connect(database) as db:
        db.execute("INSERT INTO rows VALUES ('d', 4)")
    fresh = BatchSet.from_json(submit(**query).execute(task_context))
    assert [part.row_count for part in fresh.parts] == [4]
    assert not set(earlier.batch_ids) & server_batches()
