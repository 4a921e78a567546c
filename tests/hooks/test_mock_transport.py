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

from airflow_provider.api import (
    MrsDeployAuthError,
    MrsDeployConfigurationError,
    MrsDeployConnectionError,
)
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.hooks.mock_transport import Answer, MockRequest, MockStream, MockTransport

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


FILE = bytes(range(256)) * 1000  # 256,000 bytes


def file_server(break_after: int | None) -> Callable[[MockRequest], Answer]:
    """Logs in, then serves FILE: the first answer breaks after ``break_after`` bytes, a
    ``Range`` request gets the rest (206, ``Content-Range``), as a server does."""

    def handler(request: MockRequest) -> Answer:
        if request.path == "/login":
            return 200, tokens("t1")
        validator = {"ETag": '"v1"'}
        asked = request.headers.get("Range")
        if asked is None:
            return 200, MockStream(FILE, break_after), {**validator, "Content-Length": "256000"}
        start = int(asked.removeprefix("bytes=").removesuffix("-"))
        content_range = f"bytes {start}-{len(FILE) - 1}/{len(FILE)}"
        return 206, FILE[start:], {**validator, "Content-Range": content_range}

    return handler


def download(path: str, transport: MockTransport) -> bytes:
    hook = MrsDeployHook(transport=transport)
    if path == "sync":
        return b"".join(hook.iter_batch_file(*MT, "b1", 0, "a.bin", chunk_size=4096))

    async def read() -> bytes:
        return b"".join(
            [c async for c in hook.aiter_batch_file(*MT, "b1", 0, "a.bin", chunk_size=4096)]
        )

    return asyncio.run(read())


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_broken_download_resumes_from_the_first_byte_not_received(path: str) -> None:
    transport = MockTransport(file_server(break_after=100_000))
    assert download(path, transport) == FILE
    first, resumed = transport.requests[1:]
    assert "Range" not in first.headers
    assert resumed.headers["Range"] == "bytes=100000-" and resumed.headers["If-Range"] == '"v1"'


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_whole_download_is_one_request(path: str) -> None:
    transport = MockTransport(file_server(break_after=None))
    assert download(path, transport) == FILE
    assert [r.path for r in transport.requests] == [
        "/login",
        "/api/mtService/v1.0.0/batch/b1/0/files/a.bin",
    ]


def test_an_upload_reaches_the_handler_whole() -> None:
    def handler(request: MockRequest) -> Answer:
        if request.path == "/login":
            return 200, tokens("t1")
        return 200, {"batchExecutionId": "b9"}

    transport = MockTransport(handler)
    hook = MrsDeployHook(transport=transport)
    body = [b'[{"hp": 110, ', b'"wt": 2.62}]']
    assert hook.start_batch(*MT, iter(body)) == "b9"
    (started,) = transport.requests[1:]
    assert started.method == "POST" and started.body == b"".join(body)
    assert json.loads(started.body) == [{"hp": 110, "wt": 2.62}]


def test_an_answer_cut_part_way_is_asked_again_and_no_row_is_given_twice() -> None:
    rows = [{"success": True, "outputParameters": {"answer": i}} for i in range(3000)]
    counts = {"completedItemCount": 3000, "totalItemCount": 3000}
    answer = json.dumps({"state": "Complete", **counts, "batchExecutionResults": rows}).encode()
    cuts = [len(answer) // 3, None]

    def server(request: MockRequest) -> Answer:
        if request.path == "/login":
            return 200, tokens("t1")
        return 200, MockStream(answer, cuts.pop(0))

    hook = MrsDeployHook(transport=MockTransport(server))
    taken: list[Any] = []
    status = hook.read_batch_results(*MT, "b1", taken.extend)
    assert [row.output_parameters["answer"] for row in taken] == list(range(3000))
    assert status.total_item_count == 3000 and cuts == []


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_download_checks_and_sends_nothing_until_its_first_chunk_is_asked_for(
    path: str,
) -> None:
    """On both paths the iterator is lazy: a bad name is refused when reading starts, and an
    iterator never read sends nothing."""
    transport = MockTransport(file_server(break_after=None))
    hook = MrsDeployHook(transport=transport)
    if path == "sync":
        unread = hook.iter_batch_file(*MT, "b1", 0, "..")
        assert transport.requests == []
        with pytest.raises(MrsDeployConfigurationError, match="file name"):
            next(unread)
    else:

        async def read() -> None:
            unread = hook.aiter_batch_file(*MT, "b1", 0, "..")
            assert transport.requests == []
            with pytest.raises(MrsDeployConfigurationError, match="file name"):
                await anext(unread)
            with pytest.raises(StopAsyncIteration):  # a failed download stays over
                await anext(unread)

        asyncio.run(read())
    assert transport.requests == []


def test_an_async_download_stopped_early_is_over_and_a_finished_one_stays_finished() -> None:
    transport = MockTransport(file_server(break_after=None))
    hook = MrsDeployHook(transport=transport)

    async def read() -> tuple[int, list[bytes], bytes]:
        stopped = hook.aiter_batch_file(*MT, "b1", 0, "a.bin", chunk_size=4096)
        first = await anext(stopped)
        await stopped.aclose()  # type: ignore[attr-defined]
        after_close = [c async for c in stopped]
        whole = hook.aiter_batch_file(*MT, "b1", 0, "a.bin", chunk_size=4096)
        data = b"".join([c async for c in whole])
        with pytest.raises(StopAsyncIteration):
            await anext(whole)
        return len(first), after_close, data

    first, after_close, data = asyncio.run(read())
    assert first == 4096 and after_close == [] and data == FILE
