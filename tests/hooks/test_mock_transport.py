"""The transport seam: the hook's call flow, retries and parsing on both paths, against an
answering function instead of a server.

These tests exercise the flow's decisions one request at a time (what is sent, in which
order, with which token); the same flows run against real servers in ``tests/faults``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider.api import MrsDeployAuthError, MrsDeployConnectionError
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.hooks.mock_transport import Answer, MockRequest, MockTransport

MT = ("mtService", "v1.0.0")
PROGRESS = {"state": "InProgress", "completedItemCount": 1, "totalItemCount": 3}


@pytest.fixture(autouse=True)
def connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection to a host nothing listens on: only the mock can answer."""
    conn = {
        "conn_type": "mrsdeploy",
        "host": "web-node.invalid",
        "login": "admin",
        "password": "the-password",
        "extra": {"retry_min_wait": 0, "retry_max_wait": 0},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MRSDEPLOY_DEFAULT", json.dumps(conn))


def tokens(access: str) -> dict[str, Any]:
    return {"access_token": access, "refresh_token": f"r-{access}", "expires_in": 3600}


def progress_of(path: str, transport: MockTransport) -> Any:
    hook = MrsDeployHook(transport=transport)
    try:
        if path == "sync":
            return hook.get_batch_progress(*MT, "b1")
        return asyncio.run(hook.aget_batch_progress(*MT, "b1"))
    except Exception as err:  # the error is the result under test
        return err


def script(*answers: Answer) -> Callable[[MockRequest], Answer]:
    queue = list(answers)
    return lambda request: queue.pop(0)


@pytest.mark.parametrize("path", ["sync", "async"])
def test_login_then_the_call_with_the_new_token(path: str) -> None:
    transport = MockTransport(script((200, tokens("t1")), (200, PROGRESS)))
    status = progress_of(path, transport)
    assert (status.completed_item_count, status.total_item_count) == (1, 3)
    login, poll = transport.requests
    assert (login.method, login.path, login.json) == (
        "POST",
        "/login",
        {"username": "admin", "password": "the-password"},
    )
    assert poll.path == "/api/mtService/v1.0.0/batch/b1"
    assert poll.headers["Authorization"] == "Bearer t1"


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_refused_token_is_renewed_once_and_the_call_repeated(path: str) -> None:
    transport = MockTransport(
        script(
            (200, tokens("t1")),
            (401, {"Message": "expired"}),
            (200, tokens("t2")),  # the refresh
            (200, PROGRESS),
        )
    )
    assert not isinstance(progress_of(path, transport), Exception)
    paths = [request.path for request in transport.requests]
    assert paths == ["/login", "/api/mtService/v1.0.0/batch/b1", "/login/refreshToken", paths[1]]
    assert transport.requests[2].json == {"refreshToken": "r-t1"}
    assert transport.requests[3].headers["Authorization"] == "Bearer t2"


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_token_refused_twice_is_an_auth_error(path: str) -> None:
    transport = MockTransport(
        script(
            (200, tokens("t1")),
            (401, {"Message": "no"}),
            (200, tokens("t2")),
            (401, {"Message": "still no"}),
        )
    )
    error = progress_of(path, transport)
    assert isinstance(error, MrsDeployAuthError), error
    assert "freshly issued token" in str(error)


@pytest.mark.parametrize("path", ["sync", "async"])
def test_retry_after_and_a_connection_failure_are_retried_alike(path: str) -> None:
    answers: list[Any] = [
        (200, tokens("t1")),
        (503, {"Message": "busy"}, {"Retry-After": "0"}),
        MrsDeployConnectionError("reset", retryable=True),
        (200, PROGRESS),
    ]

    def handler(request: MockRequest) -> Answer:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    transport = MockTransport(handler)
    assert not isinstance(progress_of(path, transport), Exception)
    assert len(transport.requests) == 4


def test_downloads_are_not_served() -> None:
    transport = MockTransport(script((200, tokens("t1"))))
    hook = MrsDeployHook(transport=transport)
    with pytest.raises(NotImplementedError, match="reference server"):
        hook.get_batch_file(*MT, "b1", 0, "a.txt")
