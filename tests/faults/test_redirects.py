"""Redirects are never followed: no password, token or record reaches another origin.

A hostile server answers every request with a redirect to a second listener on another port,
which records what it receives and would hand back its own token and batch id. Each case runs
on the blocking and the async path.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from airflow_provider.api import MrsDeployRedirectError, TokenPair
from airflow_provider.hooks import MrsDeployHook
from tests.faults.conftest import ConnSetter
from tests.faults.redirecting import RedirectingServer

MT = ("mtService", "v1.0.0")
RECORDS = json.dumps([{"hp": 110, "wt": 2.62}]).encode()


@pytest.fixture(params=[301, 302, 303, 307, 308])
def hostile(request: pytest.FixtureRequest) -> Iterator[RedirectingServer]:
    with RedirectingServer(status=request.param) as server:
        yield server


def refused(
    path: str,
    hook: MrsDeployHook,
    sync: Callable[[], Any],
    asynchronous: Callable[[], Coroutine[Any, Any, Any]],
) -> MrsDeployRedirectError:
    """Run the call on one path; it must fail with a redirect error."""

    async def run() -> Any:
        try:
            return await asynchronous()
        finally:
            await hook.aclose()

    with pytest.raises(MrsDeployRedirectError) as info:
        sync() if path == "sync" else asyncio.run(run())
    return info.value


def check_refused(error: MrsDeployRedirectError, hostile: RedirectingServer, status: int) -> None:
    assert error.status_code == status
    assert hostile.other_origin in str(error) and "never followed" in str(error)
    assert "scheme" in str(error) and "port" in str(error)
    assert hostile.received == [], "a request reached the other origin"


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("cached_refresh_token", [False, True], ids=["login", "refresh-token"])
def test_the_password_and_refresh_token_are_never_sent_on_a_redirect(
    hostile: RedirectingServer,
    set_default_conn: ConnSetter,
    all_logs: Callable[[], str],
    path: str,
    cached_refresh_token: bool,
) -> None:
    set_default_conn(hostile.port, "the-password")
    hook = MrsDeployHook()
    if cached_refresh_token:
        assert hook.settings.base_url  # adopts the connection and its shared token cache
        now = time.time()
        expired = TokenPair("old-access", "the-refresh-token", expires_on=now - 10)
        hook._tokens.store(expired, now)
    error = refused(
        path,
        hook,
        lambda: hook.get_service(*MT),
        lambda: hook.aget_batch_status(*MT, "b1"),
    )
    check_refused(error, hostile, hostile.status)
    # A redirected refresh is a failed refresh: the hook logs in again, at the connection's
    # own address, and that redirect is the error.
    assert error.path == "/login"
    refresh_failed = "Refreshing the token failed (POST /login/refreshToken -> " in all_logs()
    assert refresh_failed is cached_refresh_token


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_bearer_token_and_records_are_never_sent_on_a_redirect(
    hostile: RedirectingServer, set_default_conn: ConnSetter, path: str
) -> None:
    set_default_conn(hostile.port, "", bearer_token="the-token")
    hook = MrsDeployHook()
    error = refused(
        path,
        hook,
        lambda: hook.start_batch(*MT, RECORDS),
        lambda: hook.aget_batch_status(*MT, "b1"),
    )
    check_refused(error, hostile, hostile.status)


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_download_redirect_is_refused(
    hostile: RedirectingServer, set_default_conn: ConnSetter, path: str
) -> None:
    set_default_conn(hostile.port, "", bearer_token="the-token")
    hook = MrsDeployHook()

    async def download() -> bytes:
        return b"".join([c async for c in hook.aiter_batch_file(*MT, "b1", 0, "a.csv")])

    error = refused(
        path, hook, lambda: b"".join(hook.iter_batch_file(*MT, "b1", 0, "a.csv")), download
    )
    check_refused(error, hostile, hostile.status)
