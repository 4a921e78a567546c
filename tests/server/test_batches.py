"""Batch executions: results, files, state machine, cancel, validation and limits."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ServerFactory
from tests.support.api import Api
from tests.support.server import ReferenceServer

MTCARS = Path(__file__).resolve().parents[2] / "airflow_provider/server/data/mtcars.csv"
BASE = "/api/mtService/v1.0.0/batch"


def _mtcars() -> list[dict[str, str]]:
    with MTCARS.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _newton_logit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Maximum likelihood by Newton-Raphson on the log-likelihood (gradient and Hessian)."""
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-x @ beta))
        gradient = x.T @ (y - p)
        hessian = -(x.T * (p * (1 - p))) @ x
        step = np.linalg.solve(hessian, gradient)
        beta = beta - step
        if np.abs(step).max() < 1e-13:
            break
    return beta


@pytest.fixture(scope="module")
def expected_answers() -> list[float]:
    rows = _mtcars()
    x = np.array([[1.0, float(r["hp"]), float(r["wt"])] for r in rows])
    y = np.array([float(r["am"]) for r in rows])
    beta = _newton_logit(x, y)
    # R: glm(am ~ hp + wt, family = binomial, data = mtcars)
    assert beta == pytest.approx([18.86630, 0.03626, -8.08348], abs=1e-4)
    return [float(v) for v in 1 / (1 + np.exp(-x @ beta))]


@pytest.fixture(scope="module")
def api(reference_server: ReferenceServer) -> Api:
    return Api(reference_server)


def _records() -> list[dict[str, float]]:
    return [{"hp": float(r["hp"]), "wt": float(r["wt"])} for r in _mtcars()]


def test_mtcars_batch_completes_with_model_answers(api: Api, expected_answers: list[float]) -> None:
    records = _records()
    batch_id = api.start_batch(records, parallel=4)
    assert batch_id in api.get(BASE).json()
    status = api.wait(batch_id)
    assert list(status) == [
        "state",
        "completedItemCount",
        "totalItemCount",
        "batchExecutionResults",
    ]
    assert status["state"] == "Complete"
    assert status["completedItemCount"] == status["totalItemCount"] == 32
    results = status["batchExecutionResults"]
    assert len(results) == 32
    for record, result, expected in zip(records, results, expected_answers, strict=True):
        assert result["success"] is True, result
        assert result["outputParameters"]["answer"] == pytest.approx(expected, abs=1e-6)
        assert f"hp={record['hp']} wt={record['wt']}" in result["consoleOutput"]
    assert results[0]["outputParameters"]["answer"] == pytest.approx(
        1 / (1 + math.exp(-(18.86630 + 0.03626 * 110 - 8.08348 * 2.62))), abs=1e-3
    )
    for index, (record, expected) in enumerate(zip(records, expected_answers, strict=True)):
        names = api.get(f"{BASE}/{batch_id}/{index}/files").json()
        assert names == ["answer.csv", "answer.png"]
        response = api.get(
            f"{BASE}/{batch_id}/{index}/files/answer.csv", headers={"Accept": "application/json"}
        )
        assert response.status_code == 200
        header, line = response.content.decode().splitlines()
        assert header == "hp,wt,answer"
        hp, wt, answer = (float(v) for v in line.split(","))
        assert (hp, wt) == (record["hp"], record["wt"])
        assert answer == pytest.approx(expected, abs=1e-6)
        png = api.get(f"{BASE}/{batch_id}/{index}/files/answer.png")
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_results_are_empty_until_complete_unless_partial(
    reference_server: ReferenceServer, api: Api
) -> None:
    with reference_server.faults(rowDelaySeconds=0.2, service="mtService"):
        batch_id = api.start_batch(_records()[:6], parallel=1)
        status = api.wait(batch_id, until=lambda s: s["completedItemCount"] >= 2)
        assert status["state"] == "InProgress"
        assert status["batchExecutionResults"] == []
        assert status["totalItemCount"] == 6
        partial = api.status(batch_id, partial=True)
        assert partial["state"] == "InProgress"
        assert 2 <= len(partial["batchExecutionResults"]) < 6
        answers = [r["outputParameters"]["answer"] for r in partial["batchExecutionResults"]]
        for spelling in (
            "showPartialResult=true",
            "SHOWPARTIALRESULTS=TRUE",
            "showpartialresults=True",
        ):
            response = api.get(f"{BASE}/{batch_id}?{spelling}")
            got = [
                r["outputParameters"]["answer"] for r in response.json()["batchExecutionResults"]
            ]
            assert got[: len(answers)] == answers
        off = api.get(f"{BASE}/{batch_id}?showPartialResults=false").json()
        if off["state"] != "Complete":
            assert off["batchExecutionResults"] == []
        assert api.get(f"{BASE}/{batch_id}?showPartialResults=maybe").status_code == 400
    final = api.wait(batch_id)
    assert final["completedItemCount"] == 6
    assert len(final["batchExecutionResults"]) == 6


def test_state_machine_ready_then_in_progress_then_complete(
    server_factory: ServerFactory,
) -> None:
    server = server_factory("--enable-fault-hooks", "--max-concurrent-batches", "1")
    api = Api(server)
    with server.faults(rowDelaySeconds=0.3):
        first = api.start_batch(_records()[:3], parallel=1)
        api.wait(first, until=lambda s: s["state"] == "InProgress")
        second = api.start_batch(_records()[:2], parallel=1)
        assert api.status(second)["state"] == "Ready"
        assert api.status(second)["completedItemCount"] == 0
    seen = {api.wait(first)["state"], api.wait(second)["state"]}
    assert seen == {"Complete"}


def test_rows_fail_independently(api: Api) -> None:
    records = [{"text": "a", "n": 1}, {"text": "fail", "n": 1}, {"text": "b", "n": 2}]
    batch_id = api.start_batch(records, service="echoService")
    status = api.wait(batch_id, service="echoService")
    assert status["state"] == "Complete"
    assert status["completedItemCount"] == 3
    first, failed, last = status["batchExecutionResults"]
    assert first["success"] and last["success"]
    assert last["outputParameters"]["echo"] == "b b"
    assert failed["success"] is False
    assert "asked to fail" in failed["errorMessage"]
    assert "about to fail" in failed["consoleOutput"]
    files = api.get(f"/api/echoService/v1.0.0/batch/{batch_id}/1/files")
    assert files.json() == []
    echo = api.get(f"/api/echoService/v1.0.0/batch/{batch_id}/2/files/echo.txt")
    assert echo.content == b"b b"


def test_cancel_deletes_the_execution(reference_server: ReferenceServer, api: Api) -> None:
    with reference_server.faults(rowDelaySeconds=0.3, service="mtService"):
        batch_id = api.start_batch(_records()[:10], parallel=1)
        api.wait(batch_id, until=lambda s: s["completedItemCount"] >= 1)
        response = api.delete(f"{BASE}/{batch_id}")
        assert response.status_code == 200
        assert response.json() == [batch_id]
    assert api.get(f"{BASE}/{batch_id}").status_code == 404
    assert api.get(f"{BASE}/{batch_id}/0/files").status_code == 404
    assert batch_id not in api.get(BASE).json()
    assert api.delete(f"{BASE}/{batch_id}").status_code == 404
    batch_dir = reference_server.data_dir / "files" / batch_id
    deadline = time.monotonic() + 30
    while batch_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not batch_dir.exists()


def test_cancel_of_a_finished_batch_removes_its_files(
    reference_server: ReferenceServer, api: Api
) -> None:
    batch_id = api.start_batch(_records()[:2])
    api.wait(batch_id)
    assert (reference_server.data_dir / "files" / batch_id).is_dir()
    assert api.delete(f"{BASE}/{batch_id}").json() == [batch_id]
    assert not (reference_server.data_dir / "files" / batch_id).exists()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"hp": 1, "wt": 2}, "must be a JSON array"),
        ([], "at least one record"),
        ([{"hp": 1, "wt": 2}, 5], "Record 1 must be a JSON object"),
        ([{"hp": 1, "wt": 2}, {"hp": 1}], "Record 1: missing input 'wt'"),
        ([{"hp": 1, "wt": 2, "am": 1}], "Record 0: unknown input 'am'"),
        (
            [{"hp": 1, "wt": 2}, {"hp": 1, "wt": 2}, {"hp": "1", "wt": 2}],
            "Record 2: input 'hp' must be numeric, got string",
        ),
        ([{"hp": False, "wt": 2}], "Record 0: input 'hp' must be numeric, got boolean"),
        ([{"hp": None, "wt": 2}], "Record 0: input 'hp' must be numeric, got null"),
    ],
)
def test_batch_rejects_bad_records(api: Api, body: object, fragment: str) -> None:
    before = api.get(BASE).json()
    response = api.post(BASE, json=body)
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert api.get(BASE).json() == before


TYPED = {"flag": True, "x": 1.5, "k": 3, "s": "t", "v": [1, 2], "m": [[1], [2]], "df": {"a": [1]}}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("flag", 1),
        ("x", "1"),
        ("k", 1.5),
        ("k", True),
        ("s", 3),
        ("v", {"a": 1}),
        ("m", [1, 2]),
        ("df", {"a": 1}),
        ("df", [[1]]),
    ],
)
def test_batch_type_checks(api: Api, field: str, value: object) -> None:
    response = api.post("/api/typesService/v1.0.0/batch", json=[TYPED, {**TYPED, field: value}])
    assert response.status_code == 400
    assert f"Record 1: input '{field}'" in response.json()["message"]


def test_batch_accepts_every_type(api: Api) -> None:
    batch_id = api.start_batch([TYPED, {**TYPED, "x": 2, "k": -1}], service="typesService")
    status = api.wait(batch_id, service="typesService")
    assert [r["outputParameters"] for r in status["batchExecutionResults"]] == [
        TYPED,
        {**TYPED, "x": 2, "k": -1},
    ]


def test_invalid_json_and_unknown_service(api: Api) -> None:
    response = api.post(BASE, data=b"[{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert api.post("/api/nope/v1/batch", json=[{"a": 1}]).status_code == 404
    assert api.get(f"{BASE}/not-a-batch").status_code == 404


@pytest.mark.parametrize(
    ("asked", "effective"), [("500", "100"), ("0", "1"), ("3", "3"), (None, "10")]
)
def test_parallel_count_is_clamped(api: Api, asked: str | None, effective: str) -> None:
    query = "" if asked is None else f"?parallelCount={asked}"
    response = api.post(BASE + query, json=[{"hp": 1, "wt": 2}])
    assert response.status_code == 202
    assert response.headers["X-Effective-Parallel-Count"] == effective
    api.wait(response.json()["BatchExecutionId"])


def test_parallel_count_must_be_an_integer(api: Api) -> None:
    assert api.post(BASE + "?parallelCount=abc", json=[{"hp": 1, "wt": 2}]).status_code == 400


def test_file_endpoints_reject_bad_names_and_indexes(api: Api) -> None:
    batch_id = api.start_batch([{"hp": 120, "wt": 2.8}])
    api.wait(batch_id)
    files = f"{BASE}/{batch_id}/0/files"
    assert api.get(f"{BASE}/{batch_id}/1/files").status_code == 404
    assert api.get(f"{BASE}/{batch_id}/-1/files").status_code == 404
    assert api.get(f"{BASE}/{batch_id}/x/files").status_code == 400
    for hostile in (
        "..%2Fserver.db",
        "..",
        "%2Fetc%2Fpasswd",
        "missing.csv",
        "..%2F..%2Fserver.db",
    ):
        response = api.get(f"{files}/{hostile}")
        assert response.status_code == 404, hostile
        assert response.json()["code"] == 404
    assert api.get(f"{files}/answer.csv%00").status_code == 400


def test_file_index_base_one(server_factory: ServerFactory) -> None:
    server = server_factory("--file-index-base", "1")
    api = Api(server)
    batch_id = api.start_batch([{"hp": 100, "wt": 2.0}, {"hp": 200, "wt": 3.0}])
    api.wait(batch_id)
    assert api.get(f"{BASE}/{batch_id}/0/files").status_code == 404
    second = api.get(f"{BASE}/{batch_id}/2/files/answer.csv").content.decode()
    assert "200.0,3.0," in second


def _chunks(size: int) -> Iterator[bytes]:
    yield b"["
    for _ in range(size // 20):
        yield b'{"hp":1,"wt":2},    '
    yield b'{"hp":1,"wt":2}]'


def test_oversize_bodies_get_413(server_factory: ServerFactory) -> None:
    server = server_factory("--max-body-bytes", "1000")
    api = Api(server)
    small = api.post(BASE, json=[{"hp": 1, "wt": 2}])
    assert small.status_code == 202
    big = [{"hp": 1, "wt": 2}] * 100
    response = api.post(BASE, json=big)
    assert response.status_code == 413
    assert response.json()["code"] == 413
    chunked = api.post(BASE, data=_chunks(5000), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert chunked.json()["exceptionType"] == "PayloadTooLargeException"
    assert len(api.get(BASE).json()) == 1
