"""The connection form's Test button never sends credentials where the stored connection would
not, nor uses the identity of the machine running it.

Airflow reuses a stored connection's password when the tested one keeps its host and port, and
compares nothing else; the ``proxy``, ``authority_host`` and ``azure_credential`` extras change
where credentials go or whose they are. Through Airflow's real ``/connections/test`` endpoint,
with a capturing server standing for whoever the tester points the extras at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_provider.hooks.connection_test import refused_by_test_button
from airflow_provider.hooks.settings import settings_from_connection
from tests.support.loopback import LoopbackHTTPServer, LoopbackServer

SECRET = "stored-Pw-9931"


class _Capture(BaseHTTPRequestHandler):
    """Answers 401 to everything, remembering what it was sent."""

    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.seen.append(f"{self.command} {self.path} {body}")
        answer = b'{"message": "nope"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_CONNECT = _any


@pytest.fixture
def capture() -> Iterator[tuple[int, list[str]]]:
    """A loopback server recording every request: its port and what it saw."""
    seen: list[str] = []
    handler = type("Capture", (_Capture,), {"seen": seen})
    with LoopbackServer(LoopbackHTTPServer(handler)) as server:
        yield server.port, seen


def _test(api_server: Any, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_server.tokens['admin']}"}
    response = api_server.client.post("/api/v2/connections/test", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_proxy_extra_never_receives_the_stored_password(
    api_server: Any, capture: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    port, seen = capture
    headers = {"Authorization": f"Bearer {api_server.tokens['admin']}"}
    stored = {
        "connection_id": "mrs_stored_proxy",
        "conn_type": "mrsdeploy",
        "host": "127.0.0.1",
        "port": port,
        "login": "admin",
        "password": SECRET,
        "extra": json.dumps({"scheme": "http", "max_retries": 0}),
    }
    created = api_server.client.post("/api/v2/connections", json=stored, headers=headers)
    assert created.status_code in (201, 409), created.text
    # What a user who may read the connection (password masked) and create others can send.
    proxied = {
        **stored,
        "password": "***",
        "extra": json.dumps({"proxy": f"http://127.0.0.1:{port}"}),
    }
    result = _test(api_server, proxied)
    assert result["status"] is False
    assert "proxy" in result["message"] and "from a task" in result["message"]
    assert seen == []  # nothing was sent, through the proxy or otherwise
    # The stored connection itself is still tested (and reaches only its own host).
    result = _test(api_server, {**stored, "password": "***"})
    assert result["status"] is False and len(seen) == 1 and seen[0].startswith("POST /login")


@pytest.mark.parametrize("credential", ["managed_identity", "workload_identity"])
def test_the_machines_own_identity_is_never_used(
    api_server: Any,
    capture: tuple[int, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    credential: str,
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    port, seen = capture
    extra = {
        "auth": "azure_ad",
        "azure_credential": credential,
        "resource": "https://management.azure.com",
        "scheme": "http",
    }
    if credential == "workload_identity":
        extra |= {"tenant_id": "t-1", "client_id": "cid-1", "federated_token_file": "/etc/hostname"}
    body = {
        "connection_id": f"mrs_{credential}",
        "conn_type": "mrsdeploy",
        "host": "127.0.0.1",
        "port": port,
        "extra": json.dumps(extra),
    }
    result = _test(api_server, body)
    assert result["status"] is False
    assert credential.replace("_", " ") in result["message"]
    assert "identity of the machine" in result["message"]
    assert seen == []


def _settings(extra: dict[str, Any], **fields: Any) -> Any:
    conn = Connection(
        conn_id="t", conn_type="mrsdeploy", host="ml.example.com", extra=json.dumps(extra), **fields
    )
    return settings_from_connection(conn)


AAD = {"auth": "azure_ad", "tenant_id": "t-1", "client_id": "cid-1", "resource": "api://ml"}


@pytest.mark.parametrize(
    ("authority", "refused"),
    [
        (None, False),
        ("https://login.microsoftonline.com", False),
        ("https://LOGIN.microsoftonline.us/", False),
        ("https://login.chinacloudapi.cn", False),
        ("https://login.microsoftonline.com.evil.example", True),
        ("https://attacker.example", True),
    ],
)
def test_a_client_secret_goes_only_to_azure_ads_own_hosts(
    authority: str | None, refused: bool
) -> None:
    extra = {**AAD, "client_secret": SECRET}
    if authority is not None:
        extra["authority_host"] = authority
    problem = refused_by_test_button(_settings(extra))
    assert (problem is not None) is refused
    if problem is not None:
        assert "authority_host" in problem and SECRET not in problem


def test_a_plain_connection_may_be_tested() -> None:
    assert refused_by_test_button(_settings({}, login="admin", password=SECRET)) is None
    assert refused_by_test_button(_settings({"bearer_token": "tok-123456"})) is None


def test_an_authority_host_parsers_read_differently_never_receives_the_secret(
    api_server: Any, capture: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's URL parser reads ``https://evil\\@login.microsoftonline.com`` as Microsoft's
    host, which the Test button allows; azure-identity's HTTP stack reads ``evil``, and the
    stored client secret (or a password connection's password, which stands in for it) went
    there. Such an authority is refused before any request."""
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    port, seen = capture
    body = {
        "connection_id": "mrs_backslash_authority",
        "conn_type": "mrsdeploy",
        "host": "127.0.0.1",
        "port": port,
        "extra": json.dumps(
            {
                **AAD,
                "client_secret": SECRET,
                "scheme": "http",
                "authority_host": f"https://127.0.0.1:{port}\\@login.microsoftonline.com",
            }
        ),
    }
    result = _test(api_server, body)
    assert result["status"] is False
    assert "authority_host" in result["message"] and "backslash" in result["message"]
    assert SECRET not in result["message"]
    assert seen == []


class _Echo(_Capture):
    """Answers 401 quoting the request it was sent, password included."""

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.seen.append(f"{self.command} {self.path} {body}")
        answer = json.dumps({"message": {"refused": json.loads(body or "{}")}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = _any


@pytest.mark.parametrize("password", [SECRET, 'it\'s-a "quoted" pw'])
def test_a_server_quoting_the_login_does_not_show_the_tester_the_stored_password(
    api_server: Any, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    """The tester sees the form with the password masked; the message the button shows is the
    server's answer, which here quotes the login body (as a JSON object, shown by Python's
    ``str``: a password holding both quote marks is written with one escaped)."""
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    seen: list[str] = []
    handler = type("Echo", (_Echo,), {"seen": seen})
    headers = {"Authorization": f"Bearer {api_server.tokens['admin']}"}
    with LoopbackServer(LoopbackHTTPServer(handler)) as server:
        stored = {
            "connection_id": f"mrs_echo_{len(password)}",
            "conn_type": "mrsdeploy",
            "host": "127.0.0.1",
            "port": server.port,
            "login": "admin",
            "password": password,
            "extra": json.dumps({"scheme": "http", "max_retries": 0}),
        }
        created = api_server.client.post("/api/v2/connections", json=stored, headers=headers)
        assert created.status_code in (201, 409), created.text
        result = _test(api_server, {**stored, "password": "***"})
    assert result["status"] is False
    assert len(seen) == 1 and password.split()[0] in seen[0]  # the server did get it
    assert "refused" in result["message"] and "***" in result["message"]
    for piece in ("stored-Pw", "it's-a", "quoted"):
        assert piece not in result["message"], result["message"]
