"""The server's fast paths give the same answers as the general ones.

- Batch bodies are checked by a msgspec decoder and stored as the text the client sent; the
  general path (``json.loads`` + :func:`validate_batch`) must agree on every body, valid or not,
  and what the rows receive must be what was sent.
- Bearer tokens are resolved from memory once seen; rotation, revocation, purge and expiry must
  still end them at once.
- Small row files are sent from memory, large ones streamed; both byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from typing import Any

import pytest
import requests

from airflow_provider.server.errors import ApiError
from airflow_provider.server.validation import batch_row_texts, validate_batch
from tests.conftest import ServerFactory
from tests.support.api import Api
from tests.support.server import ReferenceServer

TYPES_INPUTS = [
    ("flag", "logical"),
    ("x", "numeric"),
    ("k", "integer"),
    ("s", "character"),
    ("v", "vector"),
    ("m", "matrix"),
    ("df", "data.frame"),
]
GOOD = {"flag": True, "x": 1.5, "k": 3, "s": "t", "v": [1, "a"], "m": [[1], []], "df": {"a": [1]}}
ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    1.0,
    -0.0,
    "1",
    'é\u2028"\\',
    [],
    [1, 2],
    [[1], 2],
    [[]],
    {},
    {"a": 1},
    {"a": [1]},
    {"a": [[1]]},
]


def general_path(body: bytes) -> list[str] | str:
    """The general path's verdict: the row objects it accepts, or its error message."""
    try:
        records = validate_batch(json.loads(body), TYPES_INPUTS)
    except ApiError as err:
        return err.message
    except ValueError:
        return "invalid JSON"
    return [json.dumps(r, sort_keys=True) for r in records]


def random_body(rng: random.Random) -> bytes:
    rows: list[Any] = []
    for _ in range(rng.randint(0, 4)):
        row: Any = dict(GOOD)
        for _ in range(rng.choice([0, 0, 1, 2])):
            change = rng.random()
            if change < 0.7:
                row[rng.choice(list(GOOD))] = rng.choice(ODD_VALUES)
            elif change < 0.85:
                row.pop(rng.choice(list(GOOD)), None)
            else:
                row["extra"] = 1
        if rng.random() < 0.05:
            row = rng.choice([[], "row", 1, None])
        rows.append(row)
    text = json.dumps(rows, indent=rng.choice([None, 1]), ensure_ascii=rng.random() < 0.5)
    if rng.random() < 0.1:
        text = text.replace("1.5", "NaN", 1)
    return text.encode("utf-8")


@pytest.mark.parametrize("seed", range(300))
def test_fast_check_agrees_with_the_general_path(seed: int) -> None:
    agree(random_body(random.Random(seed)))


def agree(body: bytes) -> None:
    fast = batch_row_texts(body, TYPES_INPUTS)
    general = general_path(body)
    if fast is None:
        assert not isinstance(general, list) or b"NaN" in body or b"1180591620717411303424" in body
        return
    assert isinstance(general, list), f"fast path accepted what the general path rejects: {general}"
    assert [json.dumps(json.loads(t), sort_keys=True) for t in fast] == general


@pytest.mark.parametrize("field", list(GOOD))
@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_every_field_with_every_odd_value(field: str, value: Any) -> None:
    agree(json.dumps([GOOD, {**GOOD, field: value}]).encode())


def test_fast_check_accepts_ordinary_bodies_and_leaves_the_rest() -> None:
    ordinary = json.dumps([GOOD, GOOD]).encode()
    assert batch_row_texts(ordinary, TYPES_INPUTS) == [json.dumps(GOOD)] * 2
    for undecided in (b"[]", b"{}", b"[1]", b"not json", b'[{"flag": NaN}]'):
        assert batch_row_texts(undecided, TYPES_INPUTS) is None


@pytest.fixture(scope="module")
def api(reference_server: ReferenceServer) -> Api:
    return Api(reference_server)


def test_rows_receive_exactly_what_was_sent(api: Api) -> None:
    sent = [
        {**GOOD, "x": 0.1, "s": 'quote " backslash \\ é 😀', "k": 2**62},
        {**GOOD, "x": 5e-324, "v": [1.7976931348623157e308, -0.0], "k": -7},
        {**GOOD, "x": 10**20, "df": {"a": [], "b": ["x", None]}},
    ]
    body = "[\n " + ",\n ".join(json.dumps(row, ensure_ascii=False) for row in sent) + "\n]"
    response = api.post(
        "/api/typesService/v1.0.0/batch",
        data=body.encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    status = api.wait(response.json()["BatchExecutionId"], service="typesService")
    received = [r["outputParameters"] for r in status["batchExecutionResults"]]
    assert json.dumps(received) == json.dumps(sent)


def test_bodies_only_the_standard_library_reads_still_work(api: Api) -> None:
    # NaN and numbers beyond the double range are not JSON; the server has always taken them.
    body = json.dumps([{**GOOD, "x": 2.5, "k": 10**30}]).replace("2.5", "NaN")
    response = api.post(
        "/api/typesService/v1.0.0/batch",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    status = api.wait(response.json()["BatchExecutionId"], service="typesService")
    outputs = status["batchExecutionResults"][0]["outputParameters"]
    assert outputs["x"] is None and outputs["k"] == 10**30


def _login(server: ReferenceServer) -> dict[str, Any]:
    response = requests.post(
        f"{server.url}/login",
        json={"username": "admin", "password": server.admin_password},
        timeout=30,
    )
    response.raise_for_status()
    return dict(response.json())


def _status_with(server: ReferenceServer, access: str) -> int:
    return requests.get(
        f"{server.url}/services", headers={"Authorization": f"Bearer {access}"}, timeout=30
    ).status_code


def test_a_used_token_stops_working_when_rotated_or_revoked(
    reference_server: ReferenceServer,
) -> None:
    rotated = _login(reference_server)
    assert _status_with(reference_server, rotated["access_token"]) == 200
    response = requests.post(
        f"{reference_server.url}/login/refreshToken",
        json={"refreshToken": rotated["refresh_token"]},
        timeout=30,
    )
    assert response.status_code == 200
    assert _status_with(reference_server, rotated["access_token"]) == 401
    assert _status_with(reference_server, response.json()["access_token"]) == 200

    revoked = _login(reference_server)
    assert _status_with(reference_server, revoked["access_token"]) == 200
    response = requests.delete(
        f"{reference_server.url}/login/refreshToken",
        params={"refreshToken": revoked["refresh_token"]},
        headers={"Authorization": f"Bearer {revoked['access_token']}"},
        timeout=30,
    )
    assert response.status_code == 200
    assert _status_with(reference_server, revoked["access_token"]) == 401


def test_a_used_token_ends_when_its_pair_is_purged(server_factory: ServerFactory) -> None:
    server = server_factory("--access-token-ttl", "600", "--refresh-token-ttl", "1")
    first = _login(server)
    assert _status_with(server, first["access_token"]) == 200
    time.sleep(1.5)
    _login(server)  # a login purges pairs whose refresh token expired
    assert _status_with(server, first["access_token"]) == 401


def test_small_and_large_files_are_served_byte_for_byte(api: Api) -> None:
    base = "/api/echoService/v1.0.0/batch"
    texts = [("é" * 10, 3), ("x" * 999, 400)]  # 32 characters; about 400 KB
    rows = [{"text": text, "n": n} for text, n in texts]
    batch_id = api.start_batch(rows, service="echoService", version="v1.0.0")
    status = api.wait(batch_id, service="echoService", version="v1.0.0")
    assert [r["success"] for r in status["batchExecutionResults"]] == [True, True]
    for index, (text, n) in enumerate(texts):
        expected = " ".join([text] * n).encode()
        assert api.get(f"{base}/{batch_id}/{index}/files").json() == ["echo.txt"]
        response = api.get(f"{base}/{batch_id}/{index}/files/echo.txt")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert int(response.headers["content-length"]) == len(expected)
        assert hashlib.sha256(response.content).digest() == hashlib.sha256(expected).digest()
    assert api.get(f"{base}/{batch_id}/0/files/other.txt").status_code == 404
    assert api.get(f"{base}/{batch_id}/0/files/..").status_code == 404
