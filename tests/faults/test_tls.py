"""TLS: verification is on by default; a self-signed server is refused clearly (and not
retried) until the connection names its certificate in ``ca_bundle``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from urllib3.exceptions import InsecureRequestWarning

from airflow_provider.api import (
    MrsDeployConfigurationError,
    MrsDeployConnectionError,
    MrsDeployNotFoundError,
)
from airflow_provider.hooks import MrsDeployHook
from tests.faults.conftest import FAST_RETRIES
from tests.faults.tls import TlsServer

PASSWORD = "tls-admin-password"


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    with TlsServer(tmp_path_factory.mktemp("tls"), PASSWORD) as server:
        yield server


@pytest.fixture
def hook_with(
    https_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., MrsDeployHook]]:
    hooks: list[MrsDeployHook] = []

    def make(**extra: object) -> MrsDeployHook:
        connection = {
            "conn_type": "mrsdeploy",
            "host": f"https://127.0.0.1:{https_server.port}",
            "login": "admin",
            "password": PASSWORD,
            "extra": {**FAST_RETRIES, **extra},
        }
        conn_id = f"mrsdeploy_tls_{len(hooks)}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        hook = MrsDeployHook(conn_id)
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()


def test_self_signed_server_is_refused_by_default(
    hook_with: Callable[..., MrsDeployHook], all_logs: Callable[[], str]
) -> None:
    hook = hook_with()
    assert hook.settings.verify is True
    with pytest.raises(MrsDeployConnectionError, match="TLS error") as info:
        hook.list_services()
    assert "ca_bundle" in str(info.value) and "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert info.value.retryable is False
    assert "retrying in" not in all_logs()  # a verification failure is not retried


def test_ca_bundle_makes_it_work(
    hook_with: Callable[..., MrsDeployHook], https_server: TlsServer
) -> None:
    hook = hook_with(ca_bundle=str(https_server.cert))
    names = [service.name for service in hook.list_services()]
    assert "mtService" in names
    batch_id = hook.start_batch("mtService", "v1.0.0", b'[{"hp": 120, "wt": 2.8}]')
    assert hook.get_batch_status("mtService", "v1.0.0", batch_id).total_item_count == 1


def test_async_path_verifies_too(
    hook_with: Callable[..., MrsDeployHook], https_server: TlsServer
) -> None:
    refused, trusted = hook_with(), hook_with(ca_bundle=str(https_server.cert))

    async def poll(hook: MrsDeployHook) -> None:
        try:
            await hook.aget_batch_status("mtService", "v1.0.0", "no-such-batch")
        finally:
            await hook.aclose()

    with pytest.raises(MrsDeployConnectionError, match="TLS error"):
        asyncio.run(poll(refused))
    with pytest.raises(MrsDeployNotFoundError):  # the TLS handshake passed; the id is unknown
        asyncio.run(poll(trusted))


def test_verify_false_is_possible_for_test_servers(
    hook_with: Callable[..., MrsDeployHook],
) -> None:
    with pytest.warns(InsecureRequestWarning):  # and the user is told, every time
        assert hook_with(verify=False).list_services()


def test_ca_bundle_with_verify_false_is_a_contradiction(
    hook_with: Callable[..., MrsDeployHook], tmp_path: Path
) -> None:
    hook = hook_with(verify=False, ca_bundle=str(tmp_path / "ca.pem"))
    with pytest.raises(MrsDeployConfigurationError, match="contradict"):
        hook.list_services()
