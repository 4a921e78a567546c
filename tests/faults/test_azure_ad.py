"""Azure AD connections end to end: every kind of credential, through azure-identity, against a
stand-in for Azure AD on loopback that issues 3-second signed tokens, and a reference server
that accepts them (``--aad-issuer``, ``--aad-audience``, ``--aad-key-file``) with no login.

Waits outlast the tokens, in the worker (sensor) and in the triggerer (trigger): tokens are
renewed before they expire, and no call is refused. Then what a hostile or broken token
endpoint does.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.identity")

from cryptography.hazmat.primitives.asymmetric import ec

from airflow_provider.api import (
    MrsDeployAuthError,
    MrsDeployConfigurationError,
    MrsDeployConnectionError,
)
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.hooks.azure_ad import forget_issuers
from tests.faults.helpers import CARS, MT, batch_trigger, poll_once, run_trigger, sensor
from tests.support import azure_ad as aad
from tests.support.forward_proxy import ForwardProxy
from tests.support.server import ReferenceServer

KINDS = ["client_secret", "workload_identity", "managed_identity"]
SLOW = {"rowDelaySeconds": 1.0}


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def aad_server(
    tmp_path_factory: pytest.TempPathFactory, signing_key: ec.EllipticCurvePrivateKey
) -> Iterator[ReferenceServer]:
    """A reference server accepting the stand-in's tokens (and passwords, for the faults)."""
    directory = tmp_path_factory.mktemp("aad-server")
    with aad.AzureAdStandIn(directory, signing_key=signing_key):  # writes the public key
        key_file = directory / "aad-signing-key.pem"
        with ReferenceServer(
            directory / "data",
            extra_args=(
                "--enable-fault-hooks",
                "--aad-issuer",
                aad.ISSUER,
                "--aad-audience",
                aad.RESOURCE,
                "--aad-key-file",
                str(key_file),
            ),
        ) as server:
            yield server


@pytest.fixture(autouse=True)
def _fresh_issuers() -> Iterator[None]:
    forget_issuers()
    yield
    forget_issuers()


@pytest.fixture
def stand_in(
    request: pytest.FixtureRequest, tmp_path: Path, signing_key: ec.EllipticCurvePrivateKey
) -> Iterator[aad.AzureAdStandIn]:
    kind = getattr(request, "param", "client_secret")
    with aad.AzureAdStandIn(
        tmp_path, tls=kind != "managed_identity", signing_key=signing_key
    ) as running:
        running.kind = kind  # type: ignore[attr-defined]
        yield running


def connect(
    monkeypatch: pytest.MonkeyPatch,
    stand_in: aad.AzureAdStandIn,
    server_port: int,
    tmp_path: Path,
    host: str = "127.0.0.1",
    **extra: Any,
) -> None:
    """Point ``mrsdeploy_default`` at the server, with the stand-in's kind of credential."""
    kind = getattr(stand_in, "kind", "client_secret")
    settings: dict[str, Any] = {
        "auth": "azure_ad",
        "resource": aad.RESOURCE,
        "max_retries": 0,
        "timeout": 5,
        "retry_min_wait": 0.05,
        "retry_max_wait": 0.2,
    }
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "AZURE_AUTHORITY_HOST"):
        monkeypatch.delenv(name, raising=False)
    if kind == "client_secret":
        settings.update(
            tenant_id=aad.TENANT,
            client_id=aad.CLIENT_ID,
            client_secret=aad.CLIENT_SECRET,
            authority_host=stand_in.url,
            instance_discovery=False,
            authority_ca_bundle=str(stand_in.ca_file),
        )
    elif kind == "workload_identity":
        token_file = tmp_path / "federated-token"
        token_file.write_text(stand_in.assertion)
        monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
        monkeypatch.setenv("AZURE_AUTHORITY_HOST", stand_in.url)
        monkeypatch.setenv("AZURE_TENANT_ID", aad.TENANT)
        monkeypatch.setenv("AZURE_CLIENT_ID", aad.CLIENT_ID)
        settings.update(
            azure_credential="workload_identity",
            instance_discovery=False,
            authority_ca_bundle=str(stand_in.ca_file),
        )
    else:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{stand_in.url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", aad.IDENTITY_HEADER)
        settings.update(azure_credential="managed_identity", client_id=aad.CLIENT_ID)
    settings.update(extra)
    connection = {
        "conn_type": "mrsdeploy",
        "host": host,
        "port": 12800 if host == "web-node.test" else server_port,
        "extra": settings,
    }
    monkeypatch.setenv("AIRFLOW_CONN_MRSDEPLOY_DEFAULT", json.dumps(connection))


def slow_batch() -> str:
    """A batch of three rows run one at a time, a second each: it outlasts a token."""
    hook = MrsDeployHook()
    try:
        return hook.start_batch(*MT, json.dumps(CARS[:3]).encode(), parallel_count=1)
    finally:
        hook.close()


def assert_renewed_before_expiry(stand_in: aad.AzureAdStandIn) -> None:
    issued = list(stand_in.issued)
    assert len(issued) >= 2, issued  # the wait outlasted the first token
    for (_, first), (_, second) in itertools.pairwise(issued):
        assert second < first + stand_in.lifetime  # asked for before the last one expired


@pytest.mark.parametrize("stand_in", KINDS, indirect=True)
def test_the_trigger_renews_azure_ad_tokens_during_a_long_wait(
    stand_in: aad.AzureAdStandIn,
    aad_server: ReferenceServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    all_logs: Callable[[], str],
) -> None:
    connect(monkeypatch, stand_in, aad_server.port, tmp_path)
    with aad_server.faults(**SLOW):
        batch_id = slow_batch()
        payload = run_trigger(batch_trigger([batch_id], poll_interval=0.3))
    assert payload["status"] == "complete", payload
    assert payload["completed"] == payload["total"] == 3
    assert_renewed_before_expiry(stand_in)
    assert stand_in.token_requests(stand_in.kind) == len(stand_in.issued)  # type: ignore[attr-defined]
    logs = all_logs()
    assert "refused" not in logs
    assert aad.CLIENT_SECRET not in logs


@pytest.mark.parametrize("stand_in", KINDS, indirect=True)
def test_the_sensor_renews_azure_ad_tokens_during_a_long_wait(
    stand_in: aad.AzureAdStandIn,
    aad_server: ReferenceServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    task_context: Any,
    all_logs: Callable[[], str],
) -> None:
    connect(monkeypatch, stand_in, aad_server.port, tmp_path)
    with aad_server.faults(**SLOW):
        batch_id = slow_batch()
        waiting = sensor(batch_id, poke_interval=0.3)
        waiting.execute(task_context)
        assert waiting.hook.get_batch_status(*MT, batch_id).completed_item_count == 3
        waiting.hook.close()
    assert_renewed_before_expiry(stand_in)
    assert "refused" not in all_logs()


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_token_the_server_refuses_is_renewed_once(
    stand_in: aad.AzureAdStandIn,
    aad_server: ReferenceServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    path: str,
) -> None:
    connect(monkeypatch, stand_in, aad_server.port, tmp_path)
    stand_in.skewed = 1  # the first token is already expired for the server (clock skew)
    error = poll_once(path, MrsDeployHook(), "no-such-batch")
    assert "404" in str(error), error  # the call went through with the renewed token
    assert stand_in.token_requests() == 2


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_server_refusing_every_token_fails_naming_azure_ad(
    stand_in: aad.AzureAdStandIn,
    aad_server: ReferenceServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    path: str,
) -> None:
    connect(monkeypatch, stand_in, aad_server.port, tmp_path)
    stand_in.skewed = 2
    error = poll_once(path, MrsDeployHook(), "no-such-batch")
    assert isinstance(error, MrsDeployAuthError), error
    assert "freshly issued token" in str(error) and f"tenant {aad.TENANT}" in str(error)
    assert stand_in.token_requests() == 2


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_token_endpoint_that_is_down(
    aad_server: ReferenceServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path: str
) -> None:
    with aad.AzureAdStandIn(tmp_path) as gone:
        pass
    connect(monkeypatch, gone, aad_server.port, tmp_path)
    error = poll_once(path, MrsDeployHook(), "b1")
    assert isinstance(error, MrsDeployConnectionError), error
    assert error.retryable and not error.may_have_been_sent
    text = str(error)
    assert f"tenant {aad.TENANT}" in text and f"client {aad.CLIENT_ID}" in text
    assert gone.url in text and aad.CLIENT_SECRET not in text


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("mode", ["refuse", "garbage"])
def test_a_token_endpoint_refusing_or_answering_garbage(
    stand_in: aad.AzureAdStandIn,
    aad_server: ReferenceServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    path: str,
    mode: str,
) -> None:
    connect(monkeypatch, stand_in, aad_server.port, tmp_path, max_retries=2)
    stand_in.mode = mode
    error = poll_once(path, MrsDeployHook(), "b1")
    assert isinstance(error, MrsDeployAuthError), error
    text = str(error)
    assert f"tenant {aad.TENANT}" in text and f"client {aad.CLIENT_ID}" in text
    assert aad.CLIENT_SECRET not in text  # the refusal quoted it
    assert stand_in.token_requests() == 1  # not retried: waiting will not change the answer


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_busy_token_endpoint_is_retried_by_the_connections_policy(
    stand_in: aad.AzureAdStandIn,
    aad_server: ReferenceServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    path: str,
) -> None:
    connect(monkeypatch, stand_in, aad_server.port, tmp_path, max_retries=2)
    stand_in.mode = "busy"
    error = poll_once(path, MrsDeployHook(), "b1")
    assert isinstance(error, MrsDeployConnectionError), error
    assert "503" in str(error)
    assert stand_in.token_requests() == 3  # the first attempt and two retries


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_slow_token_endpoint_is_bounded_by_the_timeout(
    stand_in: aad.AzureAdStandIn,
    aad_server: ReferenceServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    path: str,
) -> None:
    connect(monkeypatch, stand_in, aad_server.port, tmp_path, timeout=1)
    stand_in.mode = "slow"
    error = poll_once(path, MrsDeployHook(), "b1")
    stand_in.release.set()
    assert isinstance(error, MrsDeployConnectionError), error
    assert error.retryable


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("stand_in", ["client_secret", "managed_identity"], indirect=True)
def test_token_requests_go_through_the_connections_proxy(
    stand_in: aad.AzureAdStandIn,
    aad_server: ReferenceServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    path: str,
) -> None:
    hosts = {"web-node.test": ("127.0.0.1", aad_server.port)}
    with ForwardProxy(hosts) as proxy:
        connect(monkeypatch, stand_in, aad_server.port, tmp_path, "web-node.test", proxy=proxy.url)
        error = poll_once(path, MrsDeployHook(), "no-such-batch")
    assert "404" in str(error), error
    seen = proxy.targets()
    if stand_in.kind == "client_secret":  # type: ignore[attr-defined]
        assert f"CONNECT 127.0.0.1:{stand_in.port}" in seen  # the authority, over TLS
    else:
        assert any(t.startswith(f"GET {stand_in.url}/msi/token?") for t in seen), seen
    assert seen[-1].startswith("GET http://web-node.test:12800/api/mtService/v1.0.0/batch/")
    assert stand_in.token_requests() == 1


def test_without_azure_identity_the_error_names_the_extra(
    stand_in: aad.AzureAdStandIn,
    aad_server: ReferenceServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    connect(monkeypatch, stand_in, aad_server.port, tmp_path)
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    error = poll_once("sync", MrsDeployHook(), "b1")
    assert isinstance(error, MrsDeployConfigurationError), error
    assert "pip install 'airflow-provider-mrsdeploy[azure]'" in str(error)
    assert stand_in.token_requests() == 0
