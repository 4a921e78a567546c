"""Login, token rotation, revocation, expiry, users and isolation over real HTTP."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import requests

from tests.conftest import ServerFactory
from tests.support.api import Api
from tests.support.server import ReferenceServer


def _login(server: ReferenceServer, username: str, password: str) -> requests.Response:
    return requests.post(
        f"{server.url}/login", json={"username": username, "password": password}, timeout=30
    )


def _refresh(server: ReferenceServer, token: str) -> requests.Response:
    return requests.post(
        f"{server.url}/login/refreshToken", json={"refreshToken": token}, timeout=30
    )


def _services(server: ReferenceServer, access: str) -> requests.Response:
    return requests.get(
        f"{server.url}/services", headers={"Authorization": f"Bearer {access}"}, timeout=30
    )


def _assert_error(response: requests.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "exceptionType"}
    assert body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    return dict(body)


def test_login_returns_exact_token_shape(reference_server: ReferenceServer) -> None:
    before = time.time()
    response = _login(reference_server, "admin", reference_server.admin_password)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["token_type", "access_token", "expires_in", "expires_on", "refresh_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["expires_on"], int)
    assert before + 3600 - 5 <= body["expires_on"] <= time.time() + 3600 + 1
    assert body["access_token"] != body["refresh_token"]


def test_bad_credentials_and_missing_token_are_401(reference_server: ReferenceServer) -> None:
    _assert_error(_login(reference_server, "admin", "wrong"), 401)
    _assert_error(_login(reference_server, "nobody", "x"), 401)
    _assert_error(requests.get(f"{reference_server.url}/services", timeout=30), 401)
    _assert_error(_services(reference_server, "not-a-token"), 401)
    no_scheme = requests.get(
        f"{reference_server.url}/services", headers={"Authorization": "token"}, timeout=30
    )
    _assert_error(no_scheme, 401)
    bad_body = requests.post(f"{reference_server.url}/login", json={"username": 1}, timeout=30)
    _assert_error(bad_body, 400)
    not_json = requests.post(f"{reference_server.url}/login", data=b"{", timeout=30)
    _assert_error(not_json, 400)


def test_refresh_rotates_and_old_pair_stops_working(reference_server: ReferenceServer) -> None:
    first = _login(reference_server, "admin", reference_server.admin_password).json()
    second_response = _refresh(reference_server, first["refresh_token"])
    assert second_response.status_code == 200
    second = second_response.json()
    assert list(second) == list(first)
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert _services(reference_server, second["access_token"]).status_code == 200
    _assert_error(_services(reference_server, first["access_token"]), 401)
    _assert_error(_refresh(reference_server, first["refresh_token"]), 401)
    assert _refresh(reference_server, second["refresh_token"]).status_code == 200


def test_revoke_refresh_token(reference_server: ReferenceServer) -> None:
    pair = _login(reference_server, "admin", reference_server.admin_password).json()
    other = Api(reference_server)
    missing = other.delete("/login/refreshToken")
    _assert_error(missing, 400)
    revoked = other.delete("/login/refreshToken", params={"refreshToken": pair["refresh_token"]})
    assert revoked.status_code == 200, revoked.text
    _assert_error(_refresh(reference_server, pair["refresh_token"]), 401)
    _assert_error(_services(reference_server, pair["access_token"]), 401)
    again = other.delete("/login/refreshToken", params={"refreshToken": pair["refresh_token"]})
    _assert_error(again, 404)
    unauthenticated = requests.delete(
        f"{reference_server.url}/login/refreshToken",
        params={"refreshToken": "x"},
        timeout=30,
    )
    _assert_error(unauthenticated, 401)


def _wait_past(epoch: float) -> None:
    while time.time() <= epoch:
        time.sleep(0.1)


def test_access_and_refresh_tokens_expire(server_factory: ServerFactory) -> None:
    # The refresh lifetime leaves room for the (whole-second) access expiry wait before it.
    server = server_factory("--access-token-ttl", "1", "--refresh-token-ttl", "5")
    pair = _login(server, "admin", server.admin_password).json()
    assert pair["expires_in"] == 1
    assert _services(server, pair["access_token"]).status_code == 200
    _wait_past(pair["expires_on"] + 1)
    _assert_error(_services(server, pair["access_token"]), 401)
    renewed = _refresh(server, pair["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    newer = renewed.json()
    assert _services(server, newer["access_token"]).status_code == 200
    _wait_past(time.time() + 5.5)
    _assert_error(_refresh(server, newer["refresh_token"]), 401)


def test_refresh_chain_has_a_maximum_lifetime(server_factory: ServerFactory) -> None:
    server = server_factory("--refresh-token-max-lifetime", "1")
    pair = _login(server, "admin", server.admin_password).json()
    _wait_past(time.time() + 1.2)
    body = _assert_error(_refresh(server, pair["refresh_token"]), 401)
    assert "log in again" in str(body["message"])


def test_extra_users_from_flags_and_file(server_factory: ServerFactory, tmp_path: Path) -> None:
    users_file = tmp_path / "users.json"
    users_file.write_text(json.dumps({"carol": "c-pass"}))
    server = server_factory("--user", "bob:b-pass", "--users-file", str(users_file))
    assert _login(server, "bob", "b-pass").status_code == 200
    assert _login(server, "carol", "c-pass").status_code == 200
    _assert_error(_login(server, "bob", "c-pass"), 401)


def test_generated_admin_password_is_printed_once(server_factory: ServerFactory) -> None:
    server = server_factory(admin_password="")
    lines = [line for line in server.output if "generated password" in line]
    assert len(lines) == 1
    match = re.search(r"generated password for user 'admin': (\S+)", lines[0])
    assert match is not None
    password = match.group(1)
    assert _login(server, "admin", password).status_code == 200
    server.restart()
    assert not [line for line in server.output if "generated password" in line]
    assert _login(server, "admin", password).status_code == 200


def test_users_see_only_their_own_batches(server_factory: ServerFactory) -> None:
    server = server_factory("--user", "bob:b-pass")
    admin, bob = Api(server), Api(server, "bob", "b-pass")
    batch_id = admin.start_batch([{"hp": 120, "wt": 2.8}])
    admin.wait(batch_id)
    base = "/api/mtService/v1.0.0/batch"
    assert bob.get(base).json() == []
    assert batch_id in admin.get(base).json()
    _assert_error(bob.get(f"{base}/{batch_id}"), 404)
    _assert_error(bob.get(f"{base}/{batch_id}/0/files"), 404)
    _assert_error(bob.get(f"{base}/{batch_id}/0/files/answer.csv"), 404)
    _assert_error(bob.delete(f"{base}/{batch_id}"), 404)
    assert admin.status(batch_id)["state"] == "Complete"
    _assert_error(bob.get("/_faults"), 404)


def test_fault_hooks_are_admin_only(server_factory: ServerFactory) -> None:
    server = server_factory("--enable-fault-hooks", "--user", "bob:b-pass")
    bob = Api(server, "bob", "b-pass")
    _assert_error(bob.get("/_faults"), 403)
    _assert_error(bob.session.put(f"{server.url}/_faults", json={}, timeout=30), 403)
    _assert_error(requests.get(f"{server.url}/_faults", timeout=30), 401)
    assert "FAULT HOOKS ENABLED" in "\n".join(server.output)


#: Deeper than any JSON parser here recurses: a client error, answered as one.
TOO_DEEP = b"[" * 100_000 + b"]" * 100_000


def test_a_body_nested_too_deeply_is_a_400_on_every_route(
    reference_server: ReferenceServer,
) -> None:
    headers = reference_server.headers() | {"Content-Type": "application/json"}
    vector_too_deep = (
        b'[{"flag": true, "x": 1, "k": 1, "s": "s", "v": '
        + TOO_DEEP
        + b', "m": [[1]], "df": {"a": [1]}}]'
    )
    for path, body in [
        ("/login", TOO_DEEP),
        ("/login/refreshToken", TOO_DEEP),
        ("/api/mtService/v1.0.0", TOO_DEEP),
        ("/api/mtService/v1.0.0/batch", TOO_DEEP),
        ("/api/typesService/v1.0.0/batch", vector_too_deep),
    ]:
        response = requests.post(
            f"{reference_server.url}{path}", data=body, headers=headers, timeout=30
        )
        error = _assert_error(response, 400)
        assert error["exceptionType"] == "BadRequestException", path
        assert "nested too deeply" in str(error["message"]), path
