"""Each fault hook of the reference server, on the shared server (faults cleared after use)."""

from __future__ import annotations

import random

import pytest
import requests

from tests.conftest import ServerFactory
from tests.support.api import Api
from tests.support.server import ReferenceServer

ECHO = "/api/echoService/v1.0.0"


@pytest.fixture(scope="module")
def api(reference_server: ReferenceServer) -> Api:
    return Api(reference_server)


def _echo_records(count: int) -> list[dict[str, object]]:
    return [{"text": f"r{i}", "n": 1} for i in range(count)]


def _failed_rows(api: Api, count: int) -> list[int]:
    batch_id = api.start_batch(_echo_records(count), service="echoService")
    status = api.wait(batch_id, service="echoService")
    assert status["state"] == "Complete"
    assert status["completedItemCount"] == count
    results = status["batchExecutionResults"]
    for index, result in enumerate(results):
        if not result["success"]:
            assert result["errorMessage"] == f"Injected failure for row {index}."
    return [i for i, r in enumerate(results) if not r["success"]]


def test_fail_rows_by_index(reference_server: ReferenceServer, api: Api) -> None:
    with reference_server.faults(failRows=[1, 4]):
        assert _failed_rows(api, 6) == [1, 4]
    assert _failed_rows(api, 6) == []


def test_fail_once_fails_a_row_only_the_first_time_its_input_runs(
    reference_server: ReferenceServer, api: Api
) -> None:
    """A transient failure: the same records submitted again succeed (a repair's case); a new
    record at a chosen index fails once too."""
    with reference_server.faults(failRows=[1, 4], failOnce=True):
        assert _failed_rows(api, 6) == [1, 4]
        assert _failed_rows(api, 6) == []
        other = [{"text": "new", "n": 1}] * 2  # index 1 holds an input never run before
        batch_id = api.start_batch(other, service="echoService")
        results = api.wait(batch_id, service="echoService")["batchExecutionResults"]
        assert [r["success"] for r in results] == [True, False]


def test_fail_every_kth_row(reference_server: ReferenceServer, api: Api) -> None:
    with reference_server.faults(failEvery=3):
        assert _failed_rows(api, 8) == [0, 3, 6]


def test_fail_ratio_is_seeded_and_deterministic(
    reference_server: ReferenceServer, api: Api
) -> None:
    expected = [i for i in range(40) if random.Random(f"7:{i}").random() < 0.3]
    assert expected
    with reference_server.faults(failRatio=0.3, failSeed=7):
        assert _failed_rows(api, 40) == expected
        assert _failed_rows(api, 40) == expected


def test_faults_can_target_one_service(reference_server: ReferenceServer, api: Api) -> None:
    with reference_server.faults(failEvery=1, service="mtService"):
        assert _failed_rows(api, 3) == []


def test_whole_batch_failure(reference_server: ReferenceServer, api: Api) -> None:
    with reference_server.faults(failNextBatches=1, batchFailureMessage="disk on fire"):
        failed = api.start_batch(_echo_records(3), service="echoService")
        status = api.wait(failed, service="echoService")
        assert status["state"] == "Failed"
        assert status["errorMessage"] == "disk on fire"
        assert status["completedItemCount"] == 0
        assert status["totalItemCount"] == 3
        assert status["batchExecutionResults"] == []
        after = api.start_batch(_echo_records(1), service="echoService")
        assert api.wait(after, service="echoService")["state"] == "Complete"


def test_injected_http_errors(reference_server: ReferenceServer, api: Api) -> None:
    faults = [
        {"status": 429, "count": 2, "retryAfter": 3, "pathRegex": "^/services$", "method": "GET"},
        {"status": 503, "count": 1, "pathRegex": "/batch$", "method": "POST"},
    ]
    with reference_server.faults(httpErrors=faults):
        for _ in range(2):
            response = api.get("/services")
            assert response.status_code == 429
            assert response.headers["Retry-After"] == "3"
            assert response.json()["code"] == 429
        assert api.get("/services").status_code == 200
        assert api.get("/services/mtService").status_code == 200
        unavailable = api.post(f"{ECHO}/batch", json=_echo_records(1))
        assert unavailable.status_code == 503
        assert unavailable.headers["Retry-After"] == "1"
        assert api.post(f"{ECHO}/batch", json=_echo_records(1)).status_code == 202


def test_extra_file_names_are_listed_but_not_served(
    reference_server: ReferenceServer, api: Api
) -> None:
    with reference_server.faults(extraFileNames=["../x", "/etc/passwd"]):
        batch_id = api.start_batch(_echo_records(1), service="echoService")
        api.wait(batch_id, service="echoService")
        names = api.get(f"{ECHO}/batch/{batch_id}/0/files").json()
        assert names == ["echo.txt", "../x", "/etc/passwd"]
        assert api.get(f"{ECHO}/batch/{batch_id}/0/files/..%2Fx").status_code == 404
    assert api.get(f"{ECHO}/batch/{batch_id}/0/files").json() == ["echo.txt"]


def test_fault_configuration_is_validated_and_readable(
    reference_server: ReferenceServer, api: Api
) -> None:
    url = f"{reference_server.url}/_faults"
    for bad in (
        {"nope": 1},
        {"httpErrors": [{"status": 500}]},
        {"failRatio": 2},
        {"rowDelaySeconds": "x"},
        {"failOnce": "yes"},
        {"httpErrors": [{"status": 429, "pathRegex": "("}]},
        [1],
    ):
        response = api.session.put(url, json=bad, timeout=30)
        assert response.status_code == 400, bad
    current = reference_server.set_faults(rowDelaySeconds=0.01)
    assert current["rowDelaySeconds"] == 0.01
    assert api.get("/_faults").json()["rowDelaySeconds"] == 0.01
    assert api.delete("/_faults").json()["rowDelaySeconds"] == 0.0


def test_fault_hooks_are_off_by_default(server_factory: ServerFactory) -> None:
    server = server_factory()
    response = requests.put(
        f"{server.url}/_faults", json={"failEvery": 1}, headers=server.headers(), timeout=30
    )
    assert response.status_code in (404, 405)
    assert "FAULT HOOKS" not in "\n".join(server.output)
