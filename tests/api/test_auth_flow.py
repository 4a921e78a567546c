"""The authentication flow with plain values only: no hook, no connection, no transport.

The hook's use of the same flow is tested in ``tests/hooks/test_flow.py``; this shows the flow
needs nothing but credentials with four attributes and a token state.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider.api import MrsDeployProtocolError, calls
from airflow_provider.api.auth_flow import Authenticator, TokenRenewal
from airflow_provider.api.exchange import Outgoing, RawResponse
from airflow_provider.api.tokens import TokenState

NOW = 1_700_000_000.0


@dataclass(frozen=True)
class Login:
    base_url: str = "http://h:1"
    username: str | None = "admin"
    password: str | None = "pw-123456"
    bearer_token: str | None = None


def _answer(outgoing: Outgoing) -> RawResponse:
    if outgoing.request.path == "/login":
        body = {"access_token": "a1", "refresh_token": "r1", "expires_on": NOW + 3600}
        return RawResponse(200, {}, json.dumps(body).encode())
    return RawResponse(200, {}, b"[]")


def _drive(auth: Authenticator) -> list[Outgoing]:
    """One call, run again holding the renewal lock when it needs a new token (as the hooks
    do: :class:`TokenRenewal`)."""
    try:
        return _sent(auth.call(calls.list_services()))
    except TokenRenewal as wanted:
        return _sent(auth.call(calls.list_services(), None, None, wanted.refused, True))


def _sent(flow: Any) -> list[Outgoing]:
    sent: list[Outgoing] = []
    try:
        sent.append(next(flow))
        while True:
            sent.append(flow.send(_answer(sent[-1])))
    except StopIteration:
        return sent


def test_a_flow_built_from_plain_values_logs_in_then_calls() -> None:
    tokens = TokenState(300)
    auth = Authenticator(Login(), tokens, logging.getLogger("t"), lambda: NOW)
    assert [(o.request.path, o.token) for o in _drive(auth)] == [
        ("/login", None),
        ("/services", "a1"),
    ]
    assert tokens.usable_token(NOW) == "a1"
    assert [(o.request.path, o.token) for o in _drive(auth)] == [("/services", "a1")]


def test_a_bearer_token_is_used_as_is() -> None:
    login = Login(username=None, password=None, bearer_token="bearer-123456")
    auth = Authenticator(login, TokenState(300), logging.getLogger("t"), lambda: NOW)
    assert [(o.request.path, o.token) for o in _drive(auth)] == [("/services", "bearer-123456")]


#: Token answers that hold tokens and are not JSON: a trailing comma, a byte UTF-8 refuses.
BROKEN_TOKEN_ANSWERS = [
    b'{"access_token": "SECRET-ACCESS-1", "refresh_token": "SECRET-REFRESH-1",}',
    b'{"access_token": "SECRET-ACCESS-1", "refresh_token": "SECRET-REFRESH-1", "x": "\xff"}',
]


def _flow_answering(auth: Authenticator, answers: dict[str, bytes]) -> list[str]:
    """Drive one call (holding the renewal lock); each path is answered from ``answers`` (else
    ``[]``)."""
    flow = auth.call(calls.list_services(), locked=True)
    sent = [next(flow)]
    try:
        while True:
            body = answers.get(sent[-1].request.path, b"[]")
            sent.append(flow.send(RawResponse(200, {}, body)))
    except StopIteration:
        return [o.request.path for o in sent]


@pytest.mark.parametrize("body", BROKEN_TOKEN_ANSWERS, ids=["trailing-comma", "bad-utf8"])
def test_a_token_answer_that_is_not_json_is_refused_without_its_text(
    body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Its text holds tokens that Airflow's masker never saw: the error (raised and logged) and
    the log line of a failed refresh must not quote it."""
    auth = Authenticator(Login(), TokenState(300), logging.getLogger("t"), lambda: NOW)
    with pytest.raises(MrsDeployProtocolError, match="token response is not valid JSON") as caught:
        _flow_answering(auth, {"/login": body})
    assert "SECRET" not in str(caught.value)
    # A refresh answered so: logged, and a fresh login follows.
    clock = [NOW]
    tokens = TokenState(300)
    auth = Authenticator(Login(), tokens, logging.getLogger("t"), lambda: clock[0])
    first = {"access_token": "a1", "refresh_token": "r1", "expires_on": NOW + 600}
    _flow_answering(auth, {"/login": json.dumps(first).encode()})
    clock[0] = NOW + 3600
    again = {"access_token": "a2", "refresh_token": "r2", "expires_on": NOW + 7200}
    with caplog.at_level(logging.INFO, logger="t"):
        paths = _flow_answering(
            auth, {"/login/refreshToken": body, "/login": json.dumps(again).encode()}
        )
    assert paths == ["/login/refreshToken", "/login", "/services"]
    refreshed = [r.getMessage() for r in caplog.records if "Refreshing the token" in r.getMessage()]
    assert refreshed and not any("SECRET" in line for line in refreshed)
