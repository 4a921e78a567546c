"""What a new user runs into first: each mistake fails with an error that names it and says
how to fix it, before anything is sent, and a failed task prints nothing misleading.

Against the reference server (Submit, Collect) and a recording stand-in server where a test
must show that no request was made.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from structlog.testing import capture_logs

from airflow_provider.api import MrsDeployApiError, MrsDeployConfigurationError
from airflow_provider.batch_set import BatchPart, BatchSet
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.links import XCOM_STATUS_URL, MrsDeployBatchLink
from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeploySubmitBatchOperator,
)
from airflow_provider.operators.submit import run_time_parallel_count
from airflow_provider.records import MrsDeployRecordsError
from tests.faults.conftest import connection_json
from tests.faults.crafted import CraftedServer
from tests.hooks.helpers import wait_terminal
from tests.support.execution_api import ExecutionApi, install
from tests.support.server import ReferenceServer

MT = ("mtService", "v1.0.0")


def submit(records: Any, **kwargs: Any) -> MrsDeploySubmitBatchOperator:
    kwargs.setdefault("deferrable", False)
    return MrsDeploySubmitBatchOperator(
        task_id="submit", service_name=MT[0], service_version=MT[1], records=records, **kwargs
    )


def collect_op(**kwargs: Any) -> MrsDeployCollectBatchOperator:
    kwargs.setdefault("batch_id", "b1")
    kwargs.setdefault("destination", "/tmp/unused")
    return MrsDeployCollectBatchOperator(
        task_id="collect", service_name=MT[0], service_version=MT[1], **kwargs
    )


def batches_on_server() -> list[str]:
    hook = MrsDeployHook()
    try:
        return hook.list_batches(*MT)
    finally:
        hook.close()


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[CraftedServer]:
    """``mrsdeploy_default`` pointing at a stand-in server that records every request."""
    with CraftedServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_MRSDEPLOY_DEFAULT", connection_json(server.port, "pw"))
        yield server


# -- records ----------------------------------------------------------------------------------


def test_a_text_value_in_a_numeric_csv_column_is_named_with_its_row_and_column(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    path = tmp_path / "cars.csv"
    path.write_text("hp,wt\n110,2.62\n93,2.32\nfast\u200b,3.84\n66,1.835\n")
    before = set(batches_on_server())
    with pytest.raises(MrsDeployRecordsError) as info:
        submit(str(path)).execute(task_context)
    message = str(info.value)
    assert "row 2, column 'hp': 'fast\\u200b' is not a number" in message
    assert f"records file {str(path)!r}" in message
    assert "row 0 is the file's first line after the header" in message
    assert "'110'" not in message and "'93'" not in message  # the good rows are not listed
    assert "Fix these values" in message
    assert set(batches_on_server()) == before


def test_numbers_sent_as_text_are_named_when_nothing_else_is_wrong(
    mrsdeploy_conn: str, task_context: Any
) -> None:
    with pytest.raises(MrsDeployRecordsError) as info:
        submit([{"hp": "110", "wt": 2.62}]).execute(task_context)
    assert "the records list" in str(info.value)
    assert "row 0, column 'hp': '110' is text, not a number" in str(info.value)


@pytest.mark.parametrize(
    ("kind", "value", "words"),
    [
        ("integer", 2.5, "2.5 is not an integer"),
        ("logical", "yes", "'yes' is not a logical (true or false)"),
        ("character", 12345, "12345 is not a string"),
        ("numeric", "x" * 500, "'" + "x" * 80 + "'... is not a number"),
    ],
)
def test_every_type_check_quotes_the_value(kind: str, value: Any, words: str) -> None:
    from airflow_provider.api import ParameterDefinition
    from airflow_provider.records import load_records, prepare_records

    frame = load_records([{"v": value}, {"v": value}])
    with pytest.raises(MrsDeployRecordsError, match="row 0, column 'v'") as info:
        prepare_records(frame, [ParameterDefinition("v", kind)])
    assert words in str(info.value) and len(str(info.value)) < 1200


@pytest.mark.parametrize(
    ("records", "source"),
    [
        ("header-only.csv", "records file"),
        ([], "the records list"),
        (pd.DataFrame({"hp": [], "wt": []}), "the records DataFrame"),
    ],
    ids=["header-only-csv", "empty-list", "empty-frame"],
)
def test_empty_records_are_refused_before_a_batch_is_started(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, records: Any, source: str
) -> None:
    if isinstance(records, str):
        records = tmp_path / records
        records.write_text("hp,wt\n")
        records = str(records)
    before = set(batches_on_server())
    with pytest.raises(MrsDeployRecordsError) as info:
        submit(records).execute(task_context)
    message = str(info.value)
    assert message.startswith(source) and "holds no rows" in message
    assert "nothing was sent" in message
    if isinstance(records, str):
        assert records in message and "['hp', 'wt']" in message
    assert set(batches_on_server()) == before
    assert task_context["ti"].pushed == {}  # no batch set handed downstream


# -- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, -1, True, False, 2.5, "3", None])
def test_a_bad_parallel_count_fails_when_the_dag_is_parsed(count: Any) -> None:
    with pytest.raises(MrsDeployConfigurationError, match="parallel_count must be") as info:
        submit([{"hp": 1, "wt": 2}], parallel_count=count)
    assert isinstance(info.value, ValueError)


def test_a_templated_parallel_count_is_accepted_when_the_dag_is_parsed() -> None:
    assert submit([{"hp": 1}], parallel_count="{{ params.parallel }}").parallel_count == (
        "{{ params.parallel }}"
    )


def test_a_templated_parallel_count_is_checked_before_a_batch_is_started(
    mrsdeploy_conn: str, task_context: Any
) -> None:
    before = set(batches_on_server())
    operator = submit([{"hp": 1, "wt": 2}], parallel_count="{{ params.parallel }}")
    with pytest.raises(MrsDeployConfigurationError, match="parallel_count"):
        operator.execute(task_context)
    assert set(batches_on_server()) == before


def test_the_hook_applies_the_same_parallel_count_rule(recording: CraftedServer) -> None:
    hook = MrsDeployHook()
    try:
        with pytest.raises(MrsDeployConfigurationError, match="parallel_count must be"):
            hook.start_batch(*MT, b"[{}]", parallel_count=0)
    finally:
        hook.close()
    assert recording.answers.requests == []


@pytest.mark.parametrize("fmt", ["xlsx", "", "parquet2", 3])
def test_an_unknown_output_format_fails_when_the_dag_is_parsed(fmt: Any) -> None:
    with pytest.raises(MrsDeployConfigurationError) as info:
        collect_op(output_format=fmt)
    assert "parquet, csv, jsonl" in str(info.value) and isinstance(info.value, ValueError)


def test_output_format_is_case_blind() -> None:
    assert collect_op(output_format="CSV").output_format == "CSV"


def test_a_templated_output_format_is_checked_before_anything_is_fetched(
    recording: CraftedServer, task_context: Any, tmp_path: Path
) -> None:
    operator = collect_op(output_format="{{ params.fmt }}", destination=str(tmp_path / "out"))
    with pytest.raises(MrsDeployConfigurationError, match="output_format"):
        operator.execute(task_context)
    assert recording.answers.requests == []
    assert not (tmp_path / "out").exists()


# -- what a failed task prints ----------------------------------------------------------------


def exception_chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def test_a_collect_failure_is_not_chained_to_the_event_loop_probe(
    mrsdeploy_conn: str, reference_server: ReferenceServer, task_context: Any, tmp_path: Path
) -> None:
    """The files are landed on an event loop; a failure there is reported as itself, not as
    raised "during handling of" a ``RuntimeError: no running event loop``."""
    hook = MrsDeployHook()
    try:
        batch_id = hook.start_batch(*MT, json.dumps([{"hp": 110, "wt": 2.62}]).encode())
        wait_terminal(hook, MT, batch_id)
    finally:
        hook.close()
    operator = collect_op(
        batch_id=batch_id, destination=str(tmp_path / "out"), file_listing="always"
    )
    with (
        reference_server.faults(extraFileNames=["gone.txt"], service=MT[0]),
        pytest.raises(MrsDeployApiError) as info,
    ):
        operator.execute(task_context)
    assert info.value.status_code == 404
    chain = exception_chain(info.value)
    assert not any(isinstance(e, RuntimeError) for e in chain), chain


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> ExecutionApi:
    return install(monkeypatch)


def ti_key(map_index: int = -1) -> Any:
    return SimpleNamespace(
        dag_id="d", task_id="submit", run_id="r", try_number=1, map_index=map_index
    )


def errors(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry.get("log_level") in ("error", "critical")]


def test_the_link_of_a_task_that_pushed_no_url_is_empty_and_logs_no_error(
    comms: ExecutionApi,
) -> None:
    from airflow.sdk.execution_time.xcom import XCom

    link = MrsDeployBatchLink()
    with capture_logs() as logs:
        assert link.get_link(submit([{"hp": 1}]), ti_key=ti_key()) == ""
    assert errors(logs) == [], logs
    # What asking for the single value does, and what the link no longer does:
    with capture_logs() as logs:
        assert XCom.get_value(key=XCOM_STATUS_URL, ti_key=ti_key()) is None
    assert [entry["event"] for entry in errors(logs)] == ["XCom not found"]


@pytest.mark.parametrize("map_index", [-1, 2])
def test_the_link_is_the_batch_status_page(comms: ExecutionApi, map_index: int) -> None:
    """The server's URL needs a token of the server: the link opens the provider's page in
    Airflow instead (tests/ui/test_link.py)."""
    comms.stored[XCOM_STATUS_URL, map_index] = (
        "https://mlserver:12800/api/mtService/v1.0.0/batch/b1"
    )
    comms.stored["batch_set", map_index] = BatchSet(*MT, (BatchPart("b1"),), 1).to_json()
    with capture_logs() as logs:
        got = MrsDeployBatchLink().get_link(submit([{"hp": 1}]), ti_key=ti_key(map_index))
    assert got.endswith("/mrsdeploy/batches/mrsdeploy_default/mtService/v1.0.0/b1")
    assert errors(logs) == []


@pytest.mark.parametrize(("rendered", "count"), [("3", 3), (" 12 ", 12), (4, 4)])
def test_a_rendered_parallel_count_is_a_number(rendered: Any, count: int) -> None:
    """Rendered templates are text: a whole number written as text is that number."""
    assert run_time_parallel_count(rendered) == count


@pytest.mark.parametrize("rendered", ["0", "-1", "2.5", "ten", "", True])
def test_a_rendered_parallel_count_follows_the_same_rule(rendered: Any) -> None:
    with pytest.raises(MrsDeployConfigurationError, match="parallel_count must be"):
        run_time_parallel_count(rendered)
