"""The Submit task's extra link: the batch status page's address, built from what the task
pushed, and checked so that no value can change its shape."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from airflow_provider.batch_set import XCOM_BATCH_SET, BatchPart, BatchSet
from airflow_provider.links import XCOM_STATUS_URL, MrsDeployBatchLink
from airflow_provider.operators import MrsDeploySubmitBatchOperator
from airflow_provider.ui.fetch import fetch_batch
from airflow_provider.ui.urls import batch_page_path, batch_page_url, page_problems
from tests.faults.conftest import connection_json
from tests.faults.crafted import CraftedServer
from tests.support.execution_api import ExecutionApi, install

MT = ("mtService", "v1.0.0")


@pytest.fixture
def xcoms(monkeypatch: pytest.MonkeyPatch) -> ExecutionApi:
    return install(monkeypatch)


def ti_key(map_index: int = -1) -> Any:
    return SimpleNamespace(
        dag_id="d", task_id="submit", run_id="r", try_number=1, map_index=map_index
    )


def submit(**kwargs: Any) -> MrsDeploySubmitBatchOperator:
    return MrsDeploySubmitBatchOperator(
        task_id="submit", service_name=MT[0], service_version=MT[1], records=[{"hp": 1}], **kwargs
    )


def batch_set(*batch_ids: str, service: tuple[str, str] = MT) -> dict[str, Any]:
    parts = tuple(BatchPart(batch_id) for batch_id in batch_ids)
    return BatchSet(service[0], service[1], parts, len(parts)).to_json()


# -- the address --------------------------------------------------------------------------------


def test_each_value_is_one_quoted_segment() -> None:
    path = batch_page_path("mrs_ref", "svc?x=1#f", "v 1&y", "b%1")
    assert path == "/mrsdeploy/batches/mrs_ref/svc%3Fx%3D1%23f/v%201%26y/b%251"


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        (("conn/other", *MT, "b1"), "connection id"),
        (("conn\\other", *MT, "b1"), "connection id"),
        (("..", *MT, "b1"), "connection id"),
        (("c", "..", MT[1], "b1"), "service name"),
        (("c", MT[0], "a/b", "b1"), "service version"),
        (("c", *MT, "b1\nX: y"), "batch id"),
        (("c", *MT, ""), "batch id"),
        (("c" * 251, *MT, "b1"), "connection id"),
    ],
)
def test_a_value_that_could_change_the_address_gives_no_address(
    values: tuple[str, str, str, str], refused: str
) -> None:
    assert batch_page_path(*values) is None
    assert list(page_problems(*values)) == [refused]


def test_the_address_follows_the_api_base_url() -> None:
    assert batch_page_url(None, "c", *MT, "b1") == "/mrsdeploy/batches/c/mtService/v1.0.0/b1"
    assert (
        batch_page_url("https://airflow.example.com/team-a/", "c", *MT, "b1")
        == "https://airflow.example.com/team-a/mrsdeploy/batches/c/mtService/v1.0.0/b1"
    )


# -- the link -----------------------------------------------------------------------------------


@pytest.mark.parametrize("map_index", [-1, 2])
def test_the_link_is_the_page_of_the_first_batch_on_the_tasks_connection(
    xcoms: ExecutionApi, monkeypatch: pytest.MonkeyPatch, map_index: int
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.test:8080")
    xcoms.stored[XCOM_BATCH_SET, map_index] = batch_set("b1", "b2")
    xcoms.stored[XCOM_STATUS_URL, map_index] = "http://mlserver/api/mtService/v1.0.0/batch/b1"
    with capture_logs() as logs:
        link = MrsDeployBatchLink().get_link(
            submit(mrsdeploy_conn_id="mrs_prod"), ti_key=ti_key(map_index)
        )
    assert link == "http://airflow.test:8080/mrsdeploy/batches/mrs_prod/mtService/v1.0.0/b1"
    assert [entry for entry in logs if entry.get("log_level") == "error"] == []


def test_without_a_base_url_the_link_is_relative_to_the_ui(
    xcoms: ExecutionApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    xcoms.stored[XCOM_BATCH_SET, -1] = batch_set("b1")
    link = MrsDeployBatchLink().get_link(submit(), ti_key=ti_key())
    assert link == "/mrsdeploy/batches/mrsdeploy_default/mtService/v1.0.0/b1"


def test_a_task_that_pushed_no_batch_set_has_no_link_and_logs_no_error(
    xcoms: ExecutionApi,
) -> None:
    with capture_logs() as logs:
        assert MrsDeployBatchLink().get_link(submit(), ti_key=ti_key()) == ""
    assert [entry for entry in logs if entry.get("log_level") == "error"] == []


@pytest.mark.parametrize(
    ("conn_id", "pushed"),
    [
        ("team/prod", batch_set("b1")),  # the page could not be routed
        ("mrs", batch_set("b1", service=("..", "v1"))),  # would reach another resource
        ("mrs", {"kind": "something else"}),  # not a batch set
        ("mrs", "http://mlserver/api/mtService/v1.0.0/batch/b1"),
    ],
)
def test_values_that_cannot_make_an_address_give_no_link(
    xcoms: ExecutionApi, conn_id: str, pushed: Any
) -> None:
    xcoms.stored[XCOM_BATCH_SET, -1] = pushed
    assert MrsDeployBatchLink().get_link(submit(mrsdeploy_conn_id=conn_id), ti_key=ti_key()) == ""


# -- how much the page reads ------------------------------------------------------------------


def test_the_page_lists_the_first_rows_and_stops_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [{"success": index % 2 == 0, "errorMessage": f"e{index}"} for index in range(5)]
    body = {
        "state": "Complete",
        "completedItemCount": 5,
        "totalItemCount": 5,
        "batchExecutionResults": rows,
    }
    with CraftedServer() as server:
        server.answers.status = httpx.Response(200, json=body).content
        monkeypatch.setenv("AIRFLOW_CONN_MRS_ROWS", connection_json(server.port, "pw"))
        view = fetch_batch("mrs_rows", *MT, "b1", row_limit=3)
        whole = fetch_batch("mrs_rows", *MT, "b1", row_limit=5)
        requests = list(server.answers.requests)
    assert [(row.index, row.success) for row in view.rows] == [(0, True), (1, False), (2, True)]
    assert view.rows_cut and (view.completed, view.total) == (5, 5)
    assert not whole.rows_cut and len(whole.rows) == 5 and whole.failed == 2
    # Each page: a login (first only), the progress, the rows once (stopping is no failure
    # to retry).
    gets = [path for method, path in requests if method == "GET"]
    assert len(gets) == 4, requests
