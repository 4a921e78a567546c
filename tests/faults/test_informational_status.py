"""An informational status (``1xx``) is never an answer the provider accepts, and both download
and call paths, blocking and async, refuse it alike.

``http.client`` (the blocking path) skips ``100 Continue`` and takes any other ``1xx`` as the
final answer, with no body; aiohttp (the async path) skips every ``1xx`` but ``101`` and waits
for another answer. Before the fix, a ``101`` or ``150`` passed as success on the blocking path
(a file list read as empty, so Collect skipped the row's files; a cancel logged as done), and a
``150`` timed out on the async one. The stand-in server here writes its answers byte for byte.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider.api.errors import MrsDeployProtocolError
from airflow_provider.hooks import MrsDeployHook
from tests.faults.conftest import connection_json
from tests.faults.raw_server import RawServer, raw_answer

PATHS = ("sync", "async")
BATCH = ("svc", "v1", "b1")
FILES_PATH = "/api/svc/v1/batch/b1/0/files"
CONN_ID = "mrsdeploy_informational"


def interim(status: int) -> bytes:
    """A raw informational head (no body, as HTTP defines it)."""
    return f"HTTP/1.1 {status} Informational\r\n\r\n".encode("latin-1")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RawServer]:
    """A started raw server as the connection ``CONN_ID`` (one retry allowed: an informational
    answer must not use it)."""
    with RawServer() as running:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}",
            connection_json(
                running.port,
                "pw-123456",
                max_retries=1,
                retry_min_wait=0.01,
                retry_max_wait=0.02,
                timeout=2,
            ),
        )
        yield running


Call = Callable[[MrsDeployHook], Any]


def _list_files(path: str) -> Call:
    if path == "sync":
        return lambda hook: hook.list_batch_files(*BATCH, 0)
    return lambda hook: hook.alist_batch_files(*BATCH, 0)


def _cancel(path: str) -> Call:
    if path == "sync":
        return lambda hook: hook.cancel_batch(*BATCH)
    return lambda hook: hook.acancel_batch(*BATCH)


def _download(path: str) -> Call:
    if path == "sync":
        return lambda hook: b"".join(hook.iter_batch_file(*BATCH, 0, "f.txt"))

    async def read(hook: MrsDeployHook) -> bytes:
        return b"".join([chunk async for chunk in hook.aiter_batch_file(*BATCH, 0, "f.txt")])

    return read


def run_calls(path: str, *calls: Call) -> list[Any]:
    """Run ``calls`` one after the other on one hook, on ``path``; each call's outcome is its
    result (awaited on the async path, when it is awaitable) or the exception it raised."""
    hook = MrsDeployHook(CONN_ID)
    outcomes: list[Any] = []
    if path == "sync":
        try:
            for call in calls:
                try:
                    outcomes.append(call(hook))
                except Exception as err:
                    outcomes.append(err)
        finally:
            hook.close()
        return outcomes

    async def run() -> None:
        try:
            for call in calls:
                try:
                    result = call(hook)
                    outcomes.append(await result if inspect.isawaitable(result) else result)
                except Exception as err:
                    outcomes.append(err)
        finally:
            await hook.aclose()

    asyncio.run(run())
    return outcomes


def _assert_informational_error(outcome: Any, status: int, what: str) -> None:
    assert isinstance(outcome, MrsDeployProtocolError), repr(outcome)
    message = str(outcome)
    assert message.startswith(what)
    assert f"unexpected informational status {status}" in message
    assert "between Airflow and the web node" in message


@pytest.mark.parametrize("status", [101, 150, 199])
@pytest.mark.parametrize("path", PATHS)
def test_a_file_list_answered_informational_fails_instead_of_reading_as_empty(
    path: str, status: int, server: RawServer
) -> None:
    server.answer_with(raw_answer(status, b'["a.txt"]'))
    started = time.monotonic()
    [outcome] = run_calls(path, _list_files(path))
    _assert_informational_error(outcome, status, f"GET {FILES_PATH}")
    assert server.requests == [("GET", FILES_PATH)]  # not retried
    assert time.monotonic() - started < 2  # refused at once, not after the 2 s timeout


@pytest.mark.parametrize("status", [101, 150])
@pytest.mark.parametrize("path", PATHS)
def test_a_cancel_answered_informational_is_not_taken_as_done(
    path: str, status: int, server: RawServer
) -> None:
    server.answer_with(raw_answer(status))
    [outcome] = run_calls(path, _cancel(path))
    _assert_informational_error(outcome, status, "DELETE /api/svc/v1/batch/b1")
    assert server.requests == [("DELETE", "/api/svc/v1/batch/b1")]


@pytest.mark.parametrize("path", PATHS)
def test_a_file_download_answered_informational_fails(path: str, server: RawServer) -> None:
    server.answer_with(raw_answer(150, b"not the file"))
    [outcome] = run_calls(path, _download(path))
    _assert_informational_error(outcome, 150, f"GET {FILES_PATH}/f.txt")
    assert len(server.requests) == 1


@pytest.mark.parametrize("path", PATHS)
def test_an_informational_head_before_a_final_answer_fails_alike_and_desyncs_nothing(
    path: str, server: RawServer
) -> None:
    """A ``150`` then a final ``200``: the blocking path cannot see past the ``150``, so both
    refuse it; the ``200`` left on that connection must not become the next call's answer."""
    server.answer_with(interim(150) + raw_answer(200, b'["stale.txt"]'))

    def fresh_answer(hook: MrsDeployHook) -> None:
        server.answer_with(raw_answer(200, b'["fresh.txt"]'))

    first, _, second = run_calls(path, _list_files(path), fresh_answer, _list_files(path))
    _assert_informational_error(first, 150, f"GET {FILES_PATH}")
    assert second == ["fresh.txt"]


@pytest.mark.parametrize("path", PATHS)
def test_a_100_continue_before_the_answer_is_skipped_on_both_paths(
    path: str, server: RawServer
) -> None:
    """``100 Continue`` is the one informational head both HTTP clients skip, alike."""
    server.answer_with(interim(100) + raw_answer(200, b'["a.txt"]'))
    assert run_calls(path, _list_files(path)) == [["a.txt"]]
