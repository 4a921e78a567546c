"""Login, token refresh, one re-login on 401, bearer tokens, and what never reaches the logs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import requests

from airflow_provider.api import MrsDeployAuthError, MrsDeployConfigurationError
from airflow_provider.hooks import MrsDeployHook
from tests.hooks.helpers import MT, HookFactory
from tests.support.server import ReferenceServer

WRONG_PASSWORD = "wrong-Passw0rd-value"


def _pair(hook: MrsDeployHook) -> tuple[str, str | None]:
    pair = hook._tokens.pair
    assert pair is not None
    return pair.access_token, pair.refresh_token


def _status_with(server: ReferenceServer, access_token: str) -> int:
    response = requests.get(
        f"{server.url}/services", headers={"Authorization": f"Bearer {access_token}"}, timeout=30
    )
    return response.status_code


def test_wrong_password_is_a_clear_auth_error(
    reference_server: ReferenceServer, make_hook: HookFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    hook = make_hook(reference_server, password=WRONG_PASSWORD)
    with pytest.raises(MrsDeployAuthError) as info:
        hook.list_services()
    message = str(info.value)
    assert info.value.status_code == 401
    assert "login as 'admin'" in message
    assert "check the connection's login/password or bearer token" in message
    assert WRONG_PASSWORD not in message
    ok, text = hook.test_connection()
    assert not ok and WRONG_PASSWORD not in text
    out, err = capfd.readouterr()
    assert WRONG_PASSWORD not in out + err


def test_secrets_never_logged(
    reference_server: ReferenceServer, make_hook: HookFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    hook = make_hook(reference_server)
    hook.consume(*MT, {"hp": 120, "wt": 2.8})
    access_token, refresh_token = _pair(hook)
    out, err = capfd.readouterr()
    assert "Logged in to" in out + err  # the hook's log lines are in what is checked
    for secret in (reference_server.admin_password, access_token, refresh_token):
        assert secret and secret not in out + err


def test_missing_credentials(reference_server: ReferenceServer, make_hook: HookFactory) -> None:
    hook = make_hook(reference_server, password=None)
    with pytest.raises(MrsDeployConfigurationError, match="needs credentials"):
        hook.list_services()


def test_token_is_reused_between_calls(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    hook = make_hook(reference_server)
    hook.list_services()
    first = _pair(hook)
    hook.get_service(*MT)
    assert _pair(hook) == first


def test_token_refreshed_near_expiry(
    server_factory: Callable[..., ReferenceServer], make_hook: HookFactory
) -> None:
    server = server_factory("--access-token-ttl", "3")
    hook = make_hook(server)
    hook.list_services()
    old_access, old_refresh = _pair(hook)
    time.sleep(1.7)  # past half of the 3 s lifetime: the token counts as stale
    assert hook.list_services()
    new_access, new_refresh = _pair(hook)
    assert new_access != old_access
    assert new_refresh != old_refresh
    # A refresh hands out a new pair and retires the old one.
    assert _status_with(server, old_access) == 401
    time.sleep(3.2)  # the access token has now expired outright; the refresh token has not
    assert hook.list_services()
    assert _pair(hook)[0] != new_access


def test_401_renews_the_token_once_and_retries(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    hook = make_hook(reference_server)
    hook.list_services()
    stolen_access, stolen_refresh = _pair(hook)
    # Someone else uses the hook's refresh token: the hook's pair is dead although unexpired.
    response = requests.post(
        f"{reference_server.url}/login/refreshToken",
        json={"refreshToken": stolen_refresh},
        timeout=30,
    )
    assert response.status_code == 200
    assert _status_with(reference_server, stolen_access) == 401

    assert hook.get_service(*MT).name == "mtService"
    access, _ = _pair(hook)
    assert access != stolen_access
    assert _status_with(reference_server, access) == 200


def test_bearer_token_is_used_as_is(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    token = reference_server.login()
    hook = make_hook(reference_server, login=None, password=None, extra={"bearer_token": token})
    assert hook.get_service(*MT).name == "mtService"
    assert hook._tokens.pair is None  # no login happened


def test_refused_bearer_token(reference_server: ReferenceServer, make_hook: HookFactory) -> None:
    hook = make_hook(
        reference_server, login=None, password=None, extra={"bearer_token": "not-a-real-token"}
    )
    with pytest.raises(MrsDeployAuthError, match="refused the bearer token") as info:
        hook.list_services()
    assert "check the connection's login/password or bearer token" in str(info.value)
    assert "not-a-real-token" not in str(info.value)


def test_tokens_and_password_are_registered_with_the_masker(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    hook = make_hook(reference_server)
    hook.list_services()
    access_token, refresh_token = _pair(hook)
    for secret in (reference_server.admin_password, access_token, refresh_token):
        assert secret
        assert redact(f"careless {secret} line") == "careless *** line"


def test_async_path_registers_tokens_with_the_masker(
    reference_server: ReferenceServer, make_hook: HookFactory
) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    hook = make_hook(reference_server)

    async def poll() -> None:
        assert await hook.alist_batch_files(*MT, "00000000-0000-0000-0000-000000000000", 0) == []
        await hook.aclose()

    asyncio.run(poll())
    access_token, refresh_token = _pair(hook)
    for secret in (access_token, refresh_token):
        assert redact(f"careless {secret} line") == "careless *** line"
