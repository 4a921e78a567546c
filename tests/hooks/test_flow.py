"""The call flow as data: the request sequences for cases a real server cannot be made to show.

The flow is sans-I/O (it yields requests and receives responses), so these tests feed it
responses directly; everything a server can do is tested against the reference server.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from airflow_provider.api import MrsDeployAuthError, TokenPair, calls
from airflow_provider.api.auth_flow import TokenRenewal
from airflow_provider.hooks.body import request_body
from airflow_provider.hooks.flow import Authenticator, Flow, Outgoing, RawResponse
from airflow_provider.hooks.settings import MrsDeployConnectionSettings
from airflow_provider.hooks.tokens import TokenCache

NOW = 1_700_000_000.0
PASSWORD = MrsDeployConnectionSettings("http://h:1", username="admin", password="pw-123456")
BEARER = MrsDeployConnectionSettings("http://h:1", bearer_token="bearer-123456")


def _tokens(n: int) -> RawResponse:
    body = {"access_token": f"a{n}", "refresh_token": f"r{n}", "expires_on": NOW + 3600}
    return RawResponse(200, {}, json.dumps(body).encode())


def _status(code: int, message: str = "nope") -> RawResponse:
    return RawResponse(code, {}, json.dumps({"code": code, "message": message}).encode())


def _run(flow: Flow, answers: list[RawResponse]) -> tuple[list[Outgoing], Any]:
    """Feed ``answers`` in order; return what the flow sent and its result (or exception)."""
    sent: list[Outgoing] = []
    try:
        outgoing = next(flow)
        for answer in answers:
            sent.append(outgoing)
            outgoing = flow.send(answer)
    except StopIteration as done:
        return sent, done.value
    except Exception as error:
        return sent, error
    raise AssertionError(f"flow wanted more answers after {[o.request.path for o in sent]}")


def _call(
    auth: Authenticator, request: Any, answers: list[RawResponse], body: Any = None
) -> tuple[list[Outgoing], Any]:
    """Drive one call as the hooks do: a run that needs a new token raises
    :class:`TokenRenewal`, and the call runs again holding the renewal lock."""
    sent, result = _run(auth.call(request, body), answers)
    if isinstance(result, TokenRenewal):
        again = auth.call(request, body, refused=result.refused, locked=True)
        more, result = _run(again, answers[len(sent) :])
        sent += more
    return sent, result


def _pair_at(n: int) -> tuple[TokenPair, float]:
    return TokenPair(f"a{n}", f"r{n}", NOW + 3600), NOW


def _auth(settings: MrsDeployConnectionSettings, cache: TokenCache | None = None) -> Authenticator:
    return Authenticator(settings, cache or TokenCache(300), logging.getLogger("t"), lambda: NOW)


def test_first_call_logs_in_then_reuses_the_token() -> None:
    auth = _auth(PASSWORD)
    sent, result = _call(auth, calls.list_services(), [_tokens(1), RawResponse(200, {}, b"[]")])
    assert [o.request.path for o in sent] == ["/login", "/services"]
    assert sent[1].token == "a1"
    assert result.status == 200
    sent, _ = _run(auth.call(calls.list_services()), [RawResponse(200, {}, b"[]")])
    assert [(o.request.path, o.token) for o in sent] == [("/services", "a1")]


def test_second_401_after_renewal_is_an_actionable_auth_error() -> None:
    cache = TokenCache(300)
    cache.store(*_pair_at(1))
    sent, error = _call(
        _auth(PASSWORD, cache),
        calls.list_services(),
        [_status(401), _tokens(2), _status(401, "token revoked")],
    )
    assert [o.request.path for o in sent] == ["/services", "/login/refreshToken", "/services"]
    assert isinstance(error, MrsDeployAuthError)
    assert "check the connection's login/password or bearer token" in str(error)
    assert "token revoked" in str(error)


def test_refused_refresh_falls_back_to_login() -> None:
    cache = TokenCache(300)
    cache.store(*_pair_at(1))
    sent, result = _call(
        _auth(PASSWORD, cache),
        calls.list_services(),
        [_status(401), _status(401), _tokens(3), RawResponse(200, {}, b"[]")],
    )
    paths = [o.request.path for o in sent]
    assert paths == ["/services", "/login/refreshToken", "/login", "/services"]
    assert sent[-1].token == "a3"
    assert result.status == 200


def test_a_refused_token_is_renewed_only_by_the_run_that_holds_the_lock() -> None:
    """Without the lock a run never renews: it asks for the lock (TokenRenewal) and sends
    nothing more."""
    cache = TokenCache(300)
    cache.store(*_pair_at(1))
    sent, wanted = _run(_auth(PASSWORD, cache).call(calls.list_services()), [_status(401)])
    assert [o.request.path for o in sent] == ["/services"]
    assert isinstance(wanted, TokenRenewal) and wanted.refused == "a1"
    assert "a1" not in str(wanted)
    sent, wanted = _run(_auth(PASSWORD).call(calls.list_services()), [])
    assert sent == [] and isinstance(wanted, TokenRenewal) and wanted.refused is None


def test_a_token_renewed_by_another_call_meanwhile_is_used_without_renewing() -> None:
    """Calls refused together: the first to hold the lock renews; the others find the new token
    in the cache and use it (on this API a second refresh would end the first one's token)."""
    cache = TokenCache(300)
    cache.store(*_pair_at(1))
    auth = _auth(PASSWORD, cache)
    _, first = _run(auth.call(calls.list_services()), [_status(401)])
    _, second = _run(auth.call(calls.list_services()), [_status(401)])
    assert isinstance(first, TokenRenewal) and isinstance(second, TokenRenewal)
    sent, result = _run(
        auth.call(calls.list_services(), None, None, first.refused, True),
        [_tokens(2), RawResponse(200, {}, b"[]")],
    )
    assert [(o.request.path, o.token) for o in sent] == [
        ("/login/refreshToken", None),
        ("/services", "a2"),
    ]
    sent, result = _run(
        auth.call(calls.list_services(), None, None, second.refused, True),
        [RawResponse(200, {}, b"[]")],
    )
    assert [(o.request.path, o.token) for o in sent] == [("/services", "a2")]
    assert result.status == 200


def test_refused_bearer_token_does_not_log_in() -> None:
    sent, error = _run(_auth(BEARER).call(calls.list_services()), [_status(401)])
    assert [(o.request.path, o.token) for o in sent] == [("/services", "bearer-123456")]
    assert isinstance(error, MrsDeployAuthError)
    assert "bearer-123456" not in str(error)


def test_one_shot_body_is_not_resent_after_401() -> None:
    cache = TokenCache(300)
    cache.store(*_pair_at(1))
    body = request_body(chunk for chunk in [b"[]"])
    sent, error = _run(
        _auth(PASSWORD, cache).call(calls.start_batch("s", "v", 1), body), [_status(401)]
    )
    assert len(sent) == 1 and sent[0].body is body
    assert isinstance(error, MrsDeployAuthError)
    assert "cannot be resent" in str(error)


@pytest.mark.parametrize("status", [403, 404, 500])
def test_other_errors_are_not_renewals(status: int) -> None:
    cache = TokenCache(300)
    cache.store(*_pair_at(1))
    sent, error = _run(_auth(PASSWORD, cache).call(calls.list_services()), [_status(status)])
    assert len(sent) == 1
    assert getattr(error, "status_code", None) == status
