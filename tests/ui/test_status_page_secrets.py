"""The batch status page never shows the connection's secrets a server sends back: not in a
row's error, not cut in two by the cut of a long message, not in the escaped form an echo of the
JSON login body takes.

Through Airflow's own API server app (``tests/ui/conftest.py``) against loopback servers that
echo; and :func:`~airflow_provider.ui.redaction.redact` itself for the cases a server would
need many requests to show.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from airflow_provider.api.errors import CUT_MARK, MAX_MESSAGE_CHARS, error_from_response
from airflow_provider.ui.redaction import redact
from tests.faults.conftest import connection_json
from tests.faults.crafted import CraftedServer
from tests.hooks.helpers import MT
from tests.support.loopback import LoopbackHTTPServer, LoopbackServer
from tests.ui.conftest import ApiServer
from tests.ui.test_api_server import PASSWORD, page

#: A password JSON escapes (quote, backslash, a letter outside ASCII) in the login body.
ESCAPED_PASSWORD = 'pw-"Q\\\u00e9-4711'


def starts_of(secret: str, shortest: int = 4) -> list[str]:
    """Every start of ``secret`` of at least ``shortest`` characters, the whole included."""
    return [secret[:size] for size in range(shortest, len(secret) + 1)]


def row_status(*errors: str) -> bytes:
    """A complete batch whose rows all failed with ``errors``."""
    rows: list[dict[str, Any]] = [{"success": False, "errorMessage": error} for error in errors]
    return json.dumps(
        {
            "state": "Complete",
            "completedItemCount": len(rows),
            "totalItemCount": len(rows),
            "batchExecutionResults": rows,
        }
    ).encode()


class _PaddedEcho(BaseHTTPRequestHandler):
    """Refuses every login with a message that quotes the password after padding chosen so
    that the message's cut (at 500 characters) falls ``keep`` characters into it."""

    protocol_version = "HTTP/1.1"
    keep = 1

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def do_POST(self) -> None:
        sent = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        password = sent["password"]
        message = "x" * (MAX_MESSAGE_CHARS - self.keep) + password
        body = json.dumps({"message": message}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _RawEcho(BaseHTTPRequestHandler):
    """Refuses every login quoting the login body as it came, JSON escapes and all."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def do_POST(self) -> None:
        sent = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"message": "refused " + sent.decode("ascii")}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def crafted(monkeypatch: pytest.MonkeyPatch) -> Iterator[CraftedServer]:
    """Connection ``mrs_rows_echo``: a stand-in server whose batch answer the test sets."""
    with CraftedServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_MRS_ROWS_ECHO", connection_json(server.port, PASSWORD))
        yield server


# -- through the page -------------------------------------------------------------------------


def test_a_row_error_holding_the_password_does_not_show_it(
    api_server: ApiServer, crafted: CraftedServer
) -> None:
    crafted.answers.status = row_status(f"login was {PASSWORD}", "plain failure")
    answer = api_server.get(page("mrs_rows_echo", *MT, "b1"))
    assert answer.status_code == 200, answer.text
    assert PASSWORD not in answer.text
    assert "login was ***" in answer.text and "plain failure" in answer.text
    assert '<span id="failed">2</span>' in answer.text


def test_a_long_row_error_is_cut_after_the_password_is_removed(
    api_server: ApiServer, crafted: CraftedServer
) -> None:
    """The row error is cut at 500 characters; padding that puts the cut inside the password
    leaves no start of it."""
    for keep in (1, 4, len(PASSWORD) - 1):
        crafted.answers.status = row_status("x" * (500 - keep) + PASSWORD)
        answer = api_server.get(page("mrs_rows_echo", *MT, "b1"))
        assert answer.status_code == 200, answer.text
        assert not [start for start in starts_of(PASSWORD) if start in answer.text], keep


@pytest.mark.parametrize("keep", [1, 5, len(PASSWORD) // 2, len(PASSWORD) - 1])
def test_a_server_message_cut_inside_the_password_shows_no_start_of_it(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch, keep: int
) -> None:
    handler = type("Echo", (_PaddedEcho,), {"keep": keep})
    with LoopbackServer(LoopbackHTTPServer(handler)) as server:
        monkeypatch.setenv("AIRFLOW_CONN_MRS_PADDED", connection_json(server.port, PASSWORD))
        answer = api_server.get(page("mrs_padded", *MT, "b1"))
    assert answer.status_code == 502, answer.text
    assert "x" * (MAX_MESSAGE_CHARS - keep) + "***" + CUT_MARK + ")" in answer.text
    assert not [start for start in starts_of(PASSWORD) if start in answer.text]


def test_an_echo_of_the_json_login_body_does_not_show_an_escaped_password(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password with a quote, a backslash and a letter outside ASCII comes back escaped as
    JSON escapes it in the login body: that form is removed too."""
    escaped = json.dumps(ESCAPED_PASSWORD)[1:-1]
    with LoopbackServer(LoopbackHTTPServer(_RawEcho)) as server:
        conn = connection_json(server.port, ESCAPED_PASSWORD)
        monkeypatch.setenv("AIRFLOW_CONN_MRS_RAW_ECHO", conn)
        answer = api_server.get(page("mrs_raw_echo", *MT, "b1"))
    assert answer.status_code == 502, answer.text
    text = html.unescape(answer.text)
    assert '"password": "***"' in text, text
    for shown in (escaped, "4711", "u00e9"):
        assert shown not in text


# -- the pieces -------------------------------------------------------------------------------


def test_every_cut_of_a_server_message_is_marked() -> None:
    """A JSON ``message``, a bare JSON string and a body that is not JSON alike: a reader can
    tell where the message was cut."""
    long = "y" * (MAX_MESSAGE_CHARS + 50)
    bodies = [json.dumps({"message": long}), json.dumps(long), long]
    for body in bodies:
        message = error_from_response(400, body.encode(), "POST", "/login", {}).message
        assert message == "y" * MAX_MESSAGE_CHARS + CUT_MARK, body[:20]
    short = error_from_response(400, b'{"message": "short"}', "POST", "/login", {}).message
    assert short == "short"


@pytest.mark.parametrize(
    ("text", "secrets", "shown"),
    [
        # The start of a secret at a cut mark, however short.
        ("refused (xxs3cr...); check", ["s3cret"], "refused (xx***...); check"),
        ("refused (xxs...)", ["s3cret"], "refused (xx***...)"),
        # A secret holding the cut mark itself, cut right after it.
        ("x ab......", ["ab...cd"], "x ***..."),
        # The longest start of any secret wins.
        ("x abcd...", ["abc", "abcdef"], "x ***..."),
        # The log-safe escaped form of a secret with a control character.
        ("echo pw\\tx", ["pw\tx"], "echo ***"),
        # Text without a cut mark keeps what merely looks like a start.
        ("the s3cr is fine", ["s3cret"], "the s3cr is fine"),
        # Several marks, each handled.
        ("a s3c... b s3cre...", ["s3cret"], "a ***... b ***..."),
    ],
)
def test_redact(text: str, secrets: list[str], shown: str) -> None:
    assert redact(text, secrets) == shown
