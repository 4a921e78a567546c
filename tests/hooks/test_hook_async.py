"""The async methods (used by triggers) in a real event loop."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import requests

from airflow_provider.api import MrsDeployBatchState, MrsDeployNotFoundError
from airflow_provider.hooks import MrsDeployHook
from tests.hooks.helpers import MT, HookFactory, encode, http_faults_left, wait_terminal
from tests.support.server import ReferenceServer


def test_async_status_files_and_cancel(hook: MrsDeployHook) -> None:
    batch_id = hook.start_batch(*MT, encode([{"hp": 120, "wt": 2.8}, {"hp": 95, "wt": 3.1}]))
    wait_terminal(hook, MT, batch_id)

    async def scenario() -> None:
        status = await hook.aget_batch_status(*MT, batch_id, show_partial_results=True)
        assert status.state is MrsDeployBatchState.COMPLETE
        assert len(status.results) == 2
        assert sorted(await hook.alist_batch_files(*MT, batch_id, 1)) == [
            "answer.csv",
            "answer.png",
        ]
        assert await hook.alist_batch_files(*MT, batch_id, 7) == []
        await hook.acancel_batch(*MT, batch_id)
        await hook.acancel_batch(*MT, batch_id)  # already gone: no error
        with pytest.raises(MrsDeployNotFoundError):
            await hook.aget_batch_status(*MT, batch_id)
        await hook.aclose()

    asyncio.run(scenario())


def test_async_only_hook_logs_in_and_retries(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    hook = make_hook(reference_server)
    batch_id = reference_server_batch(reference_server)
    fault = {"status": 503, "count": 2, "retryAfter": 1, "pathRegex": "/batch/"}

    async def scenario() -> None:
        # Two polls at once on one session, as a triggerer runs many triggers in one loop.
        first, second = await asyncio.gather(
            hook.aget_batch_status(*MT, batch_id), hook.aget_batch_status(*MT, batch_id)
        )
        assert first.total_item_count == second.total_item_count == 1
        await hook.acancel_batch(*MT, batch_id)
        await hook.aclose()

    with reference_server.faults(httpErrors=[fault]):
        asyncio.run(scenario())
        assert http_faults_left(reference_server) == [0]
    assert hook._session is None  # nothing on the sync path was used


def test_async_session_follows_the_event_loop(hook: MrsDeployHook) -> None:
    async def poll() -> int:
        return len(await hook.alist_batch_files(*MT, "00000000-0000-0000-0000-000000000000", 0))

    assert asyncio.run(poll()) == 0
    assert asyncio.run(poll()) == 0  # a new loop gets a new session
    asyncio.run(hook.aclose())


def reference_server_batch(server: ReferenceServer) -> str:
    """Start a one-row batch as admin, outside the hook under test."""
    import requests

    response = requests.post(
        f"{server.url}/api/mtService/v1.0.0/batch",
        data=json.dumps([{"hp": 120, "wt": 2.8}]),
        headers={**server.headers(), "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["BatchExecutionId"])


def test_progress_reads_state_and_counts_and_builds_no_result(
    hook: MrsDeployHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What waiting polls: a finished batch's answer carries every row, none is built."""
    from airflow_provider.api import ExecutionResult
    from airflow_provider.hooks import mrsdeploy as hook_module

    rows = [{"hp": 120, "wt": 2.8}, {"hp": 95, "wt": 3.1}, {"hp": 66, "wt": 1.8}]
    batch_id = hook.start_batch(*MT, encode(rows))
    wait_terminal(hook, MT, batch_id)
    full = hook.get_batch_status(*MT, batch_id)
    assert len(full.results) == 3
    built = []
    original = ExecutionResult.from_json.__func__  # type: ignore[attr-defined]

    def counted(cls: type[ExecutionResult], obj: object) -> ExecutionResult:
        built.append(obj)
        return original(cls, obj)  # type: ignore[no-any-return]

    monkeypatch.setattr(ExecutionResult, "from_json", classmethod(counted))
    progresses = [hook.get_batch_progress(*MT, batch_id)]
    for threshold in (1 << 20, 0):  # decoded on the loop, and in a worker thread
        monkeypatch.setattr(hook_module, "ASYNC_DECODE_IN_THREAD_BYTES", threshold)
        progresses.append(asyncio.run(hook.aget_batch_progress(*MT, batch_id)))
    asyncio.run(hook.aclose())
    for progress in progresses:
        assert progress.state is MrsDeployBatchState.COMPLETE
        assert (progress.completed_item_count, progress.total_item_count) == (3, 3)
        assert progress.results == ()
    assert built == []
    hook.cancel_batch(*MT, batch_id)
    with pytest.raises(MrsDeployNotFoundError):
        hook.get_batch_progress(*MT, batch_id)
    with pytest.raises(MrsDeployNotFoundError):
        asyncio.run(hook.aget_batch_progress(*MT, batch_id))
    asyncio.run(hook.aclose())


def test_progress_reads_only_the_start_of_a_large_answer(
    reference_server: ReferenceServer, make_hook: HookFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state and counts come before the rows: a wait reads those and hangs up, so a
    finished batch's answer larger than ``max_response_bytes`` does not fail the wait (reading
    its results still does)."""
    from airflow_provider.hooks import limits
    from airflow_provider.hooks.limits import MrsDeployResponseTooLargeError

    limit = 100_000
    hook = make_hook(reference_server, extra={"max_response_bytes": limit})
    rows = [{"hp": 100 + i % 150, "wt": 2.5} for i in range(2_000)]
    batch_id = hook.start_batch(*MT, encode(rows), parallel_count=8)
    deadline = time.monotonic() + 60
    while not hook.get_batch_progress(*MT, batch_id).is_terminal:
        assert time.monotonic() < deadline, "the batch did not finish"
        time.sleep(0.05)
    seen: list[int] = []
    original = limits.BodyCollector.add

    def counted(self: limits.BodyCollector, chunk: bytes) -> bool:
        seen.append(len(chunk))
        return original(self, chunk)

    monkeypatch.setattr(limits.BodyCollector, "add", counted)
    progress = hook.get_batch_progress(*MT, batch_id)
    assert (progress.state, progress.total_item_count) == (MrsDeployBatchState.COMPLETE, 2_000)
    read_sync = sum(seen)
    seen.clear()
    progress = asyncio.run(hook.aget_batch_progress(*MT, batch_id))
    assert (progress.state, progress.completed_item_count) == (MrsDeployBatchState.COMPLETE, 2_000)
    whole = requests.get(
        f"{reference_server.url}/api/{MT[0]}/{MT[1]}/batch/{batch_id}",
        headers=reference_server.headers(),
        timeout=30,
    ).content
    assert len(whole) > 3 * limit
    assert 0 < read_sync < limit and 0 < sum(seen) < limit
    with pytest.raises(MrsDeployResponseTooLargeError):
        hook.get_batch_status(*MT, batch_id)
    # The connection hung up on is not reused mid-answer: the next calls work.
    assert hook.get_batch_progress(*MT, batch_id).total_item_count == 2_000
    assert asyncio.run(hook.aget_batch_progress(*MT, batch_id)).total_item_count == 2_000
    hook.cancel_batch(*MT, batch_id)
    asyncio.run(hook.aclose())
