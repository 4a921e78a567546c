"""The provider's parts of Airflow's API server: the connection form it serves to the UI, and
the batch status page (signing in, checks of the address, what it shows and never shows).

Against Airflow's own app (``tests/ui/conftest.py``), the reference server for real batches,
and stand-in servers that record every request (so a test can show none was made) or answer
with hostile content.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider.hooks import MrsDeployHook
from airflow_provider.provider_info import CONN_FIELDS
from tests.faults.conftest import connection_json
from tests.faults.crafted import CraftedServer
from tests.hooks.helpers import MT, encode, mtcars_records, wait_terminal
from tests.support.loopback import LoopbackHTTPServer, LoopbackServer
from tests.support.server import ReferenceServer
from tests.ui.conftest import ApiServer

PASSWORD = "pw-Secret-4711"


def segment(value: str) -> str:
    """``value`` percent-quoted; a ``.`` or ``..`` is spelled ``%2E`` so that the client sends
    it as it is instead of resolving it as a folder (what a hand-made request can do)."""
    return "%2E" * len(value) if value in (".", "..") else quote(value, safe="")


def page(conn_id: str, name: str, version: str, batch_id: str) -> str:
    values = (conn_id, name, version, batch_id)
    return "/mrsdeploy/batches/" + "/".join(segment(v) for v in values)


@pytest.fixture
def crafted(monkeypatch: pytest.MonkeyPatch) -> Iterator[CraftedServer]:
    """Connection ``mrs_crafted``: a stand-in server that records every request."""
    with CraftedServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_MRS_CRAFTED", connection_json(server.port, PASSWORD))
        yield server


@pytest.fixture
def mrs_ref(reference_server: ReferenceServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Connection ``mrs_ref`` to the reference server."""
    monkeypatch.setenv("AIRFLOW_CONN_MRS_REF", json.dumps(reference_server.airflow_connection()))
    return "mrs_ref"


# -- the connection form ----------------------------------------------------------------------


def test_the_api_server_serves_the_connection_form(api_server: ApiServer) -> None:
    """What the UI's connection form is built from (``/ui/connections/hook_meta``): on
    Airflow 3.1 from the hook's form methods, on 3.2+ from ``conn-fields``."""
    answer = api_server.get("/ui/connections/hook_meta")
    assert answer.status_code == 200, answer.text
    (meta,) = [hook for hook in answer.json() if hook["connection_type"] == "mrsdeploy"]
    assert meta["hook_class_name"] == "airflow_provider.hooks.mrsdeploy.MrsDeployHook"
    extra = meta["extra_fields"]
    assert extra is not None and list(extra) == list(CONN_FIELDS)
    for name, definition in CONN_FIELDS.items():
        assert extra[name]["schema"]["title"] == definition["label"], name
        assert extra[name]["description"] == definition["description"], name
    assert extra["bearer_token"]["schema"]["format"] == "password"
    assert extra["verify"]["schema"]["type"] == ["boolean", "null"]
    standard = meta["standard_fields"]
    assert standard["url_schema"]["hidden"] is True
    assert standard["login"]["title"] == "Username"
    assert standard["host"]["placeholder"].startswith("mlserver.example.com")


# -- signing in -------------------------------------------------------------------------------


def test_nobody_signed_in_gets_401_and_nothing_is_asked(
    api_server: ApiServer, crafted: CraftedServer
) -> None:
    answer = api_server.get(page("mrs_crafted", *MT, "b1"), user=None)
    assert answer.status_code == 401
    assert crafted.answers.requests == []


def test_a_forged_session_cookie_is_refused(api_server: ApiServer, crafted: CraftedServer) -> None:
    api_server.client.cookies.clear()
    api_server.client.cookies.set("_token", "not.a.jwt")
    answer = api_server.client.get(page("mrs_crafted", *MT, "b1"))
    assert answer.status_code in (401, 403)
    assert crafted.answers.requests == []


def test_a_user_who_may_not_read_the_connection_gets_403(
    api_server: ApiServer, crafted: CraftedServer
) -> None:
    answer = api_server.get(page("mrs_crafted", *MT, "b1"), user="viewer")
    assert answer.status_code == 403
    assert crafted.answers.requests == []


# -- what the page shows ----------------------------------------------------------------------


def test_the_page_shows_a_real_batch(api_server: ApiServer, mrs_ref: str) -> None:
    hook = MrsDeployHook(mrs_ref)
    try:
        batch_id = hook.start_batch(*MT, encode(mtcars_records()))
        wait_terminal(hook, MT, batch_id)
    finally:
        hook.close()
    answer = api_server.get(page(mrs_ref, *MT, batch_id))
    assert answer.status_code == 200, answer.text
    html = answer.text
    assert '<span id="state" class="Complete">Complete</span>' in html
    assert '<span id="completed">32</span> of <span id="total">32</span>' in html
    assert "All 32 rows." in html and '<span id="succeeded">32</span>' in html
    assert html.count("<tr><td>") == 32
    assert batch_id in html and "mtService v1.0.0" in html
    assert answer.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"
    assert "<script" not in html


def test_an_unknown_batch_is_a_404_page(api_server: ApiServer, mrs_ref: str) -> None:
    answer = api_server.get(page(mrs_ref, *MT, "no-such-batch"))
    assert answer.status_code == 404
    assert "Batch not found" in answer.text


def test_an_unknown_connection_is_a_404_page(api_server: ApiServer) -> None:
    answer = api_server.get(page("mrs_nowhere", *MT, "b1"))
    assert answer.status_code == 404
    assert "There is no connection &#x27;mrs_nowhere&#x27;" in answer.text


def test_a_connection_of_another_type_is_not_used(
    api_server: ApiServer, crafted: CraftedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = {"conn_type": "http", "host": "127.0.0.1", "port": crafted.port, "password": "x"}
    monkeypatch.setenv("AIRFLOW_CONN_MRS_HTTP", json.dumps(other))
    answer = api_server.get(page("mrs_http", *MT, "b1"))
    assert answer.status_code == 400
    assert "Not an mrsdeploy connection" in answer.text
    assert crafted.answers.requests == []


# -- hostile addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conn_id", "name", "version", "batch_id", "refused"),
    [
        ("mrs_crafted", *MT, "..", "batch id"),
        ("mrs_crafted", "..", MT[1], "b1", "service name"),
        ("mrs_crafted", MT[0], "a\\b", "b1", "service version"),
        ("mrs_crafted", *MT, "b1\tx", "batch id"),
        ("mrs_crafted", *MT, "b1\x7f", "batch id"),
        # A line break never reaches the page: Airflow's routing does not match it (404).
        ("mrs_crafted", *MT, "b1\r\nX-Injected: 1", None),
        # Nor does an encoded slash: the mount decodes it into a separator (404).
        ("mrs_crafted", *MT, "a%2Fb", None),
        ("mrs_crafted", *MT, " ", "batch id"),
        ("mrs_crafted", "x" * 300, MT[1], "b1", "service name"),
        ("mrs crafted", *MT, "b1", "connection id"),
        ("mrs_crafted<script>", *MT, "b1", "connection id"),
    ],
)
def test_a_hostile_address_is_refused_before_anything_is_looked_up(
    api_server: ApiServer,
    crafted: CraftedServer,
    conn_id: str,
    name: str,
    version: str,
    batch_id: str,
    refused: str | None,
) -> None:
    answer = api_server.get(page(conn_id, name, version, batch_id))
    assert answer.status_code == (404 if refused is None else 400), answer.text
    assert refused is None or f"<li>{refused}: " in answer.text
    assert "<script>" not in answer.text
    assert crafted.answers.requests == []


def test_a_value_with_url_syntax_reaches_the_server_quoted(
    api_server: ApiServer, crafted: CraftedServer
) -> None:
    """``?``, ``#``, ``%`` and ``&`` are no separators of a path segment: each is sent
    percent-quoted, so the value cannot add a query or reach another resource."""
    answer = api_server.get(page("mrs_crafted", "svc?x=1#f", "v1&y=2", "b 1;%"))
    assert answer.status_code == 200, answer.text
    paths = [path for method, path in crafted.answers.requests if method == "GET"]
    assert paths and set(paths) == {"/api/svc%3Fx%3D1%23f/v1%26y%3D2/batch/b%201%3B%25"}


# -- hostile servers ---------------------------------------------------------------------------


class _EchoingLogin(BaseHTTPRequestHandler):
    """Refuses every login, quoting the request body (and so the password) in its message."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def do_POST(self) -> None:
        sent = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        body = json.dumps({"message": f"refused {sent} <b>bold</b>"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_server_that_echoes_the_password_cannot_show_it(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer(LoopbackHTTPServer(_EchoingLogin)) as server:
        monkeypatch.setenv("AIRFLOW_CONN_MRS_ECHO", connection_json(server.port, PASSWORD))
        answer = api_server.get(page("mrs_echo", *MT, "b1"))
    assert answer.status_code == 502, answer.text
    assert "POST /login" in answer.text and "***" in answer.text
    assert PASSWORD not in answer.text
    assert "<b>bold</b>" not in answer.text and "&lt;b&gt;bold&lt;/b&gt;" in answer.text


def test_a_bearer_token_is_never_shown(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer(LoopbackHTTPServer(_EchoingLogin)) as server:
        conn = json.loads(connection_json(server.port, PASSWORD))
        conn["host"] = f"127.0.0.1/{PASSWORD}-token"  # a host holding the secret, so the
        conn["extra"]["bearer_token"] = f"{PASSWORD}-token"  # hook's message quotes it
        monkeypatch.setenv("AIRFLOW_CONN_MRS_TOKEN", json.dumps(conn))
        answer = api_server.get(page("mrs_token", *MT, "b1"))
    assert answer.status_code in (400, 502), answer.text
    assert PASSWORD not in answer.text


def test_markup_in_a_row_error_is_shown_as_text(
    api_server: ApiServer, crafted: CraftedServer
) -> None:
    row: dict[str, Any] = {"success": False, "errorMessage": "<script>alert(1)</script>"}
    crafted.answers.status = json.dumps(
        {
            "state": "Complete",
            "completedItemCount": 1,
            "totalItemCount": 1,
            "batchExecutionResults": [row],
        }
    ).encode()
    answer = api_server.get(page("mrs_crafted", *MT, "b1"))
    assert answer.status_code == 200, answer.text
    assert "<script>" not in answer.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
    assert '<span id="failed">1</span>' in answer.text
