"""Shared async sessions: one per event loop and connection, reference-counted, turn-limited.

Against the real reference server, as a triggerer's hooks use them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider.api import MrsDeployConnectionError
from airflow_provider.api.calls import ApiRequest
from airflow_provider.hooks import MrsDeployHook, async_sessions, transport_async
from airflow_provider.hooks.async_sessions import Turns, request_turn, users_of
from airflow_provider.hooks.settings import MrsDeployConnectionSettings
from tests.hooks.helpers import MT, HookFactory
from tests.support.server import ReferenceServer

UNKNOWN_BATCH = "00000000-0000-0000-0000-000000000000"


async def poll(hook: MrsDeployHook) -> list[str]:
    """One cheap authenticated call (an unknown batch has no files)."""
    return await hook.alist_batch_files(*MT, UNKNOWN_BATCH, 0)


def test_hooks_of_one_connection_share_one_session(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    first, second = make_hook(reference_server), make_hook(reference_server)

    async def scenario() -> None:
        await asyncio.gather(poll(first), poll(second))
        session = first._async_session
        assert session is not None and session is second._async_session
        assert users_of(session) == 2
        await first.aclose()
        assert not session.closed and users_of(session) == 1
        assert await poll(second) == []  # the other hook keeps working
        await second.aclose()
        assert session.closed and users_of(session) == 0  # the last user closed it

    asyncio.run(scenario())


def test_a_new_loop_gets_a_new_session(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    hook = make_hook(reference_server)
    sessions = []

    async def scenario() -> None:
        await poll(hook)
        sessions.append(hook._async_session)

    asyncio.run(scenario())
    asyncio.run(scenario())  # the hook was not closed in the first loop
    assert sessions[0] is not sessions[1]
    assert sessions[0] is not None and sessions[0].closed  # given back when the hook moved on
    asyncio.run(hook.aclose())  # from yet another loop: best effort, no error
    assert sessions[1] is not None and sessions[1].closed


def test_loops_in_two_threads_never_share(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    hooks = [make_hook(reference_server), make_hook(reference_server)]

    async def scenario(hook: MrsDeployHook) -> Any:
        await poll(hook)
        session = hook._async_session
        await hook.aclose()
        return session

    async def both() -> list[Any]:
        return list(
            await asyncio.gather(*(asyncio.to_thread(asyncio.run, scenario(h)) for h in hooks))
        )

    first, second = asyncio.run(both())
    assert first is not second


def test_different_settings_get_different_sessions(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    plain = make_hook(reference_server)
    short_timeout = make_hook(reference_server, timeout=5)
    same_as_plain = make_hook(reference_server)

    async def scenario() -> None:
        await asyncio.gather(poll(plain), poll(short_timeout), poll(same_as_plain))
        assert plain._async_session is same_as_plain._async_session
        assert plain._async_session is not short_timeout._async_session
        for hook in (plain, short_timeout, same_as_plain):
            await hook.aclose()

    asyncio.run(scenario())


def test_identity_is_part_of_the_key() -> None:
    base = MrsDeployConnectionSettings("http://h:1", username="a", password="p1")
    other_password = MrsDeployConnectionSettings("http://h:1", username="a", password="p2")
    assert async_sessions.SessionKey.of(base) == async_sessions.SessionKey.of(base)
    assert async_sessions.SessionKey.of(base) != async_sessions.SessionKey.of(other_password)
    assert "p1" not in repr(async_sessions.SessionKey.of(base))


def test_concurrent_first_calls_of_one_hook_hold_one_use(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    hook = make_hook(reference_server)

    async def scenario() -> None:
        await asyncio.gather(*(poll(hook) for _ in range(5)))
        session = hook._async_session
        assert session is not None and users_of(session) == 1
        await hook.aclose()
        assert session.closed

    asyncio.run(scenario())


def test_a_session_closed_elsewhere_is_replaced(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    first, second = make_hook(reference_server), make_hook(reference_server)

    async def scenario() -> None:
        await poll(first)
        stale = first._async_session
        assert stale is not None
        await stale.close()
        assert await poll(second) == []
        assert second._async_session is not stale
        assert await poll(first) == []  # notices the closed session and takes the new one
        assert first._async_session is second._async_session
        for hook in (first, second):
            await hook.aclose()

    asyncio.run(scenario())


def test_at_most_request_concurrency_requests_in_progress(
    reference_server: ReferenceServer, make_hook: HookFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = [make_hook(reference_server) for _ in range(40)]
    in_progress = peak = 0
    original = transport_async.send

    async def counting_send(*args: Any) -> Any:
        nonlocal in_progress, peak
        in_progress += 1
        peak = max(peak, in_progress)
        try:
            await asyncio.sleep(0.01)  # a slow server: everyone is due at once
            return await original(*args)
        finally:
            in_progress -= 1

    monkeypatch.setattr(transport_async, "send", counting_send)

    async def scenario() -> None:
        await poll(hooks[0])  # log in once
        peak_before = peak
        assert peak_before >= 1
        await asyncio.gather(*(poll(h) for h in hooks for _ in range(3)))
        for hook in hooks:
            await hook.aclose()

    asyncio.run(scenario())
    assert peak == async_sessions.REQUEST_CONCURRENCY


def test_first_lookups_take_turns(
    reference_server: ReferenceServer, make_hook: HookFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = [make_hook(reference_server) for _ in range(20)]
    in_progress = peak = 0
    original = MrsDeployHook.asettings

    async def counting_asettings(self: MrsDeployHook) -> MrsDeployConnectionSettings:
        nonlocal in_progress, peak
        first = self._settings is None
        in_progress += first
        peak = max(peak, in_progress)
        try:
            await asyncio.sleep(0.005)
            return await original(self)
        finally:
            in_progress -= first

    monkeypatch.setattr(MrsDeployHook, "asettings", counting_asettings)

    async def scenario() -> None:
        await asyncio.gather(*(poll(h) for h in hooks))
        for hook in hooks:
            await hook.aclose()

    asyncio.run(scenario())
    assert peak == async_sessions.LOOKUP_CONCURRENCY


def test_turns_are_given_in_order_and_never_lost() -> None:
    async def scenario() -> list[str]:
        turns = Turns(1)
        order: list[str] = []
        await turns.take()

        async def wait(name: str, timeout: float | None = None) -> None:
            await turns.take(timeout)
            order.append(name)
            turns.give_back()

        late = asyncio.create_task(wait("late", timeout=0.01))
        cancelled = asyncio.create_task(wait("cancelled"))
        first = asyncio.create_task(wait("first"))
        second = asyncio.create_task(wait("second"))
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutError):
            await late
        cancelled.cancel()
        await asyncio.sleep(0)
        turns.give_back()
        await asyncio.gather(first, second)
        assert cancelled.cancelled()
        await asyncio.wait_for(turns.take(), 1)  # the turn came back
        return order

    assert asyncio.run(scenario()) == ["first", "second"]


def test_a_turn_handed_to_a_cancelled_waiter_goes_on() -> None:
    async def scenario() -> None:
        turns = Turns(1)
        await turns.take()
        waiter = asyncio.create_task(turns.take())
        await asyncio.sleep(0)
        turns.give_back()  # handed to the waiter ...
        waiter.cancel()  # ... which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.wait_for(turns.take(), 1)

    asyncio.run(scenario())


def test_waiting_too_long_for_a_turn_is_a_timeout_not_sent() -> None:
    settings = MrsDeployConnectionSettings("http://h:1", username="a", password="p", timeout=0.05)
    request = ApiRequest("GET", "/services")

    async def scenario() -> MrsDeployConnectionError:
        session = await async_sessions.acquire(settings)
        try:
            turns = [request_turn(session, settings, request) for _ in range(17)]
            for turn in turns[:16]:
                await turn.__aenter__()
            with pytest.raises(MrsDeployConnectionError) as info:
                await turns[16].__aenter__()
            for turn in turns[:16]:
                await turn.__aexit__(None, None, None)
            return info.value
        finally:
            await async_sessions.release(session)

    error = asyncio.run(scenario())
    assert error.retryable and not error.may_have_been_sent
    assert "within 0.05 s" in str(error)
