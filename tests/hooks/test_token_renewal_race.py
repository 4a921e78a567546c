"""Calls refused together renew the token once, on the blocking and the async path.

On this API a refresh ends the pair it replaces, so when several calls sharing a token are
refused at once (the token expired early, the server restarted) and each renews on its own,
one call's refresh ends the token another has just obtained, and that call fails as if the
credentials were wrong. Against the reference server (which rotates pairs that way): the
shared token cache is given an access token the server never issued, beside a valid refresh
token, and many calls then run at once. The requests each path sends are counted on their way
out (the real transport still sends them).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from airflow_provider.api import TokenPair
from airflow_provider.hooks import MrsDeployHook, transport_async, transport_sync

CALLS = 16
SERVICE = ("mtService", "v1.0.0")


@pytest.fixture
def sent_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """The paths of the requests the hooks send, counted by path."""
    counted: Counter[str] = Counter()
    blocking_send, async_send = transport_sync.send, transport_async.send

    def count_blocking(session: Any, settings: Any, outgoing: Any, *args: Any) -> Any:
        counted[outgoing.request.path] += 1
        return blocking_send(session, settings, outgoing, *args)

    async def count_async(session: Any, settings: Any, outgoing: Any, *args: Any) -> Any:
        counted[outgoing.request.path] += 1
        return await async_send(session, settings, outgoing, *args)

    monkeypatch.setattr(transport_sync, "send", count_blocking)
    monkeypatch.setattr(transport_async, "send", count_async)
    yield counted


def _batch_and_a_refused_token_in_the_cache() -> str:
    """Start a batch (logging in), then keep the refresh token beside an access token the server
    never issued; return the batch's id."""
    hook = MrsDeployHook()
    try:
        batch_id = hook.start_batch(*SERVICE, b'[{"hp": 110, "wt": 2.62}]')
        cache = hook._tokens
        refresh_token = cache.refresh_token()
        assert refresh_token is not None
        cache.store(TokenPair("never-issued-token", refresh_token, time.time() + 3600), time.time())
    finally:
        hook.close()
    return str(batch_id)


def _blocking_calls(batch_id: str) -> list[Any]:
    def one() -> Any:
        hook = MrsDeployHook()
        try:
            return hook.get_batch_progress(*SERVICE, batch_id)
        finally:
            hook.close()

    with ThreadPoolExecutor(CALLS) as pool:
        return list(pool.map(lambda _: one(), range(CALLS)))


def _async_calls(batch_id: str) -> list[Any]:
    async def one() -> Any:
        hook = MrsDeployHook()
        try:
            return await hook.aget_batch_progress(*SERVICE, batch_id)
        finally:
            await hook.aclose()

    async def all_of_them() -> list[Any]:
        return list(await asyncio.gather(*(one() for _ in range(CALLS))))

    return asyncio.run(all_of_them())


PATHS: dict[str, Callable[[str], list[Any]]] = {
    "blocking": _blocking_calls,
    "event-loop": _async_calls,
}


@pytest.mark.parametrize("path", PATHS)
def test_calls_refused_together_renew_the_token_once(
    path: str, mrsdeploy_conn: str, sent_paths: Counter[str]
) -> None:
    batch_id = _batch_and_a_refused_token_in_the_cache()
    sent_paths.clear()
    results = PATHS[path](batch_id)
    assert len(results) == CALLS  # every call succeeded
    assert sent_paths["/login/refreshToken"] == 1
    assert sent_paths["/login"] == 0
    # Each call was refused once at most, then sent again with the renewed token.
    status_path = f"/api/{SERVICE[0]}/{SERVICE[1]}/batch/{batch_id}"
    assert CALLS < sent_paths[status_path] <= 2 * CALLS
