"""Text a client may send that UTF-8 cannot carry as it is: bytes that are not UTF-8 inside a
JSON string, and JSON's escape of half a UTF-16 pair (``"\\ud800"``). Each is a 4xx the client
can act on, or a value echoed back as JSON escapes, never a 500."""

from __future__ import annotations

import json

import pytest
import requests

from tests.support.api import Api
from tests.support.server import ReferenceServer

ECHO_BATCH = "/api/echoService/v1.0.0/batch"


@pytest.fixture(scope="module")
def api(reference_server: ReferenceServer) -> Api:
    return Api(reference_server)


def _post(api: Api, path: str, body: bytes, **kwargs: object) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    return api.post(path, data=body, headers=headers, **kwargs)


def test_bytes_that_are_not_utf8_in_a_batch_are_a_400_as_in_a_single_call(api: Api) -> None:
    body = b'[{"text": "\xff", "n": 1}]'
    single = _post(api, "/api/echoService/v1.0.0", b'{"text": "\xff", "n": 1}')
    batch = _post(api, ECHO_BATCH, body)
    assert single.status_code == 400, single.text
    assert batch.status_code == 400, batch.text
    assert batch.json()["exceptionType"] == "BadRequestException"
    listed = api.get(ECHO_BATCH).json()
    assert all(api.status(b, "echoService")["totalItemCount"] for b in listed)  # none half-made


def test_an_unknown_input_named_with_a_lone_surrogate_is_named_in_the_400(api: Api) -> None:
    response = _post(api, ECHO_BATCH, b'[{"text": "a", "n": 1, "\\ud800": 1}]')
    assert response.status_code == 400, response.text
    assert "\\ud800" in response.text  # escaped, as JSON writes it
    assert "\ud800" in response.json()["message"]


def test_a_single_call_echoing_a_lone_surrogate_answers_it_escaped(api: Api) -> None:
    body = b'{"flag": true, "x": 1, "k": 1, "s": "x\\ud800", "v": [], "m": [], "df": {}}'
    response = _post(api, "/api/typesService/v1.0.0", body)
    assert response.status_code == 200, response.text
    assert "x\\ud800" in response.text  # escaped, as JSON writes it
    assert "x\ud800" in json.dumps(response.json(), ensure_ascii=False)


def test_a_plain_answer_is_written_as_before(api: Api) -> None:
    """Only a body UTF-8 cannot hold is escaped: other non-ASCII text stays as it was."""
    response = _post(api, "/api/echoService/v1.0.0", json.dumps({"text": "é", "n": 1}).encode())
    assert response.status_code == 200
    assert '"echo":"é"' in response.content.decode("utf-8")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/login", b'{"username": "admin", "password": "\\ud800"}'),
        ("/login", b'{"username": "\\ud800", "password": "x"}'),
        ("/login/refreshToken", b'{"refreshToken": "\\ud800"}'),
    ],
)
def test_credentials_with_a_lone_surrogate_are_wrong_credentials(
    reference_server: ReferenceServer, path: str, body: bytes
) -> None:
    response = requests.post(
        f"{reference_server.url}{path}",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 401, response.text


def test_a_parallel_count_longer_than_int_reads_is_clamped_not_refused(api: Api) -> None:
    for raw in ("9" * 5000, "-" + "9" * 5000):
        response = api.post(f"{ECHO_BATCH}?parallelCount={raw}", json=[{"text": "a", "n": 1}])
        assert response.status_code == 202, response.text[:200]
        batch_id = response.json()["BatchExecutionId"]
        assert api.wait(batch_id, "echoService")["state"] == "Complete"
    refused = api.post(f"{ECHO_BATCH}?parallelCount=9x", json=[{"text": "a", "n": 1}])
    assert refused.status_code == 400
