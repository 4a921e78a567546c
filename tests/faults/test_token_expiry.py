"""Tokens expiring while a wait is in progress: the trigger and the sensor renew and go on.

The server issues 2-second access tokens and the batch takes longer than that. With the default
``token_refresh_lead`` the hook refreshes before expiry (at half the lifetime); with a lead of 0
it refreshes when the token's ``expires_on`` has passed; either way no call is refused. When the
refresh token has expired too, the refresh is refused and the hook logs in again. (A token the
server refuses although the client thinks it valid, e.g. after clock skew, is renewed on the 401
and the call repeated once: see ``tests/hooks/test_hook_auth.py``.) The fault proxy in front of
the server records the requests, which shows which renewal happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.hooks import MrsDeployHook
from tests.conftest import ServerFactory
from tests.faults.conftest import ConnSetter
from tests.faults.helpers import CARS, MT, batch_trigger, run_trigger, sensor
from tests.faults.proxy import FaultProxy
from tests.support.server import ReferenceServer

TTL = "2"
#: Rows run one at a time, one second each: the batch outlasts the 2-second token.
SLOW = {"rowDelaySeconds": 1.0}


@pytest.fixture(scope="module")
def short_tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceServer]:
    """A server issuing 2-second access tokens (shared by this module's tests)."""
    with ReferenceServer(
        tmp_path_factory.mktemp("short-tokens"),
        extra_args=("--access-token-ttl", TTL, "--enable-fault-hooks"),
    ) as server:
        yield server


@pytest.fixture
def proxy_to(short_tokens: ReferenceServer) -> Iterator[FaultProxy]:
    with FaultProxy(lambda: ("127.0.0.1", short_tokens.port)) as proxy:
        yield proxy


def slow_batch(server: ReferenceServer) -> str:
    """Start a batch that runs about three seconds (faults stay set until it has run)."""
    hook = MrsDeployHook()
    try:
        return hook.start_batch(*MT, __import__("json").dumps(CARS[:3]).encode(), parallel_count=1)
    finally:
        hook.close()


def renewals(proxy: FaultProxy) -> tuple[int, int]:
    """(refreshes, logins) that went through the proxy."""
    return (
        proxy.stats.requests.count("POST /login/refreshToken"),
        proxy.stats.requests.count("POST /login"),
    )


@pytest.mark.parametrize("lead", [None, 0], ids=["refresh-before-expiry", "refresh-at-expiry"])
def test_trigger_wait_outlives_the_token(
    lead: int | None,
    short_tokens: ReferenceServer,
    proxy_to: FaultProxy,
    set_default_conn: ConnSetter,
    all_logs: Callable[[], str],
) -> None:
    extra = {} if lead is None else {"token_refresh_lead": lead}
    set_default_conn(proxy_to.port, short_tokens.admin_password, **extra)
    with short_tokens.faults(**SLOW):
        batch_id = slow_batch(short_tokens)
        payload = run_trigger(batch_trigger([batch_id], poll_interval=0.3))
    assert payload["status"] == "complete"
    assert payload["completed"] == payload["total"] == 3
    refreshes, logins = renewals(proxy_to)
    assert refreshes >= 1  # the token did expire during the wait and was renewed
    assert logins == 1  # slow_batch's hook and the trigger's share one login; renewal needed none
    logs = all_logs()
    assert "refused" not in logs and "Polling batch status failed" not in logs


@pytest.mark.parametrize("lead", [None, 0], ids=["refresh-before-expiry", "refresh-at-expiry"])
def test_sensor_poke_loop_outlives_the_token(
    lead: int | None,
    short_tokens: ReferenceServer,
    proxy_to: FaultProxy,
    set_default_conn: ConnSetter,
    task_context: Any,
    all_logs: Callable[[], str],
) -> None:
    extra = {} if lead is None else {"token_refresh_lead": lead}
    set_default_conn(proxy_to.port, short_tokens.admin_password, **extra)
    with short_tokens.faults(**SLOW):
        batch_id = slow_batch(short_tokens)
        waiting = sensor(batch_id, poke_interval=0.3)
        waiting.execute(task_context)  # returns only once the batch is complete
        assert waiting.hook.get_batch_status(*MT, batch_id).completed_item_count == 3
        waiting.hook.close()
    refreshes, logins = renewals(proxy_to)
    assert refreshes >= 1 and logins == 1
    assert "refused" not in all_logs()


def test_trigger_logs_in_again_when_the_refresh_token_expired_too(
    server_factory: ServerFactory,
    set_default_conn: ConnSetter,
    all_logs: Callable[[], str],
    tmp_path: Path,
) -> None:
    server = server_factory(
        "--access-token-ttl", TTL, "--refresh-token-ttl", "1", "--enable-fault-hooks"
    )
    with FaultProxy(lambda: ("127.0.0.1", server.port)) as proxy:
        set_default_conn(proxy.port, server.admin_password, token_refresh_lead=0)
        with server.faults(**SLOW):
            batch_id = slow_batch(server)
            payload = run_trigger(batch_trigger([batch_id], poll_interval=0.3))
        refreshes, logins = renewals(proxy)
    assert payload["status"] == "complete" and payload["completed"] == 3
    # One shared login first; the trigger logged in again after the refused refresh.
    assert refreshes >= 1 and logins >= 2
    assert "Refreshing the token answered 401; logging in again" in all_logs()
