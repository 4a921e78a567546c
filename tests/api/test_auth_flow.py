"""The authentication flow with plain values only: no hook, no connection, no transport.

The hook's use of the same flow is tested in ``tests/hooks/test_flow.py``; this shows the flow
needs nothing but credentials with four attributes and a token state.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from airflow_provider.api import calls
from airflow_provider.api.auth_flow import Authenticator
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
    flow = auth.call(calls.list_services())
    sent = [next(flow)]
    try:
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
