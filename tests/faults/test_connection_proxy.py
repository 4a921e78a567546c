"""The connection's own proxy (``proxy`` / ``no_proxy`` extras): both transports route alike
through a real forwarding proxy on loopback, which records what passed through it.

The web node is named ``web-node.test``, a name only the proxy resolves (to the reference
server): a request that skipped the proxy cannot reach anything. The environment names another
proxy that must be ignored once the connection names its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider.api import MrsDeployConnectionError
from airflow_provider.api.models import BatchStatus
from airflow_provider.hooks import MrsDeployHook
from tests.faults.helpers import MT, poll_once
from tests.support.forward_proxy import ForwardProxy
from tests.support.server import ReferenceServer

WEB_NODE = "http://web-node.test:12800"


@pytest.fixture
def forward_proxy(reference_server: ReferenceServer) -> Iterator[ForwardProxy]:
    hosts = {"web-node.test": ("127.0.0.1", reference_server.port)}
    with ForwardProxy(hosts) as proxy:
        yield proxy


@pytest.fixture(autouse=True)
def environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy in the environment that nothing may use (nothing listens there)."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")


def connect(
    monkeypatch: pytest.MonkeyPatch, server: ReferenceServer, host: str, **extra: Any
) -> None:
    connection = {
        "conn_type": "mrsdeploy",
        "host": host,
        "port": 12800 if host == "web-node.test" else server.port,
        "login": "admin",
        "password": server.admin_password,
        "extra": {"max_retries": 0, "timeout": 10, **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MRSDEPLOY_DEFAULT", json.dumps(connection))


def start_batch() -> str:
    hook = MrsDeployHook()
    try:
        return hook.start_batch(*MT, json.dumps([{"hp": 110.0, "wt": 2.62}]).encode())
    finally:
        hook.close()


@pytest.mark.parametrize("path", ["sync", "async"])
def test_both_transports_go_through_the_connections_proxy(
    forward_proxy: ForwardProxy,
    reference_server: ReferenceServer,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    connect(monkeypatch, reference_server, "web-node.test", proxy=forward_proxy.url)
    batch_id = start_batch()
    assert forward_proxy.targets() == [
        f"POST {WEB_NODE}/login",
        f"POST {WEB_NODE}/api/mtService/v1.0.0/batch?parallelCount=10",
    ]
    forward_proxy.passed.clear()
    status = poll_once(path, MrsDeployHook(), batch_id)
    assert isinstance(status, BatchStatus), status
    [polled] = forward_proxy.targets()
    assert polled.startswith(f"GET {WEB_NODE}/api/mtService/v1.0.0/batch/{batch_id}")


@pytest.mark.parametrize("path", ["sync", "async"])
def test_proxy_credentials_are_sent_and_never_shown(
    reference_server: ReferenceServer, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    hosts = {"web-node.test": ("127.0.0.1", reference_server.port)}
    with ForwardProxy(hosts, credentials="scott:tiger-p4ss") as proxy:
        url = f"http://scott:tiger-p4ss@127.0.0.1:{proxy.port}"
        connect(monkeypatch, reference_server, "web-node.test", proxy=url)
        error = poll_once(path, MrsDeployHook(), "no-such-batch")
        assert "404" in str(error), error  # through the proxy, to the server
        assert {p.refused for p in proxy.passed} == {None}
        assert {p.proxy_authorization for p in proxy.passed} == {"Basic c2NvdHQ6dGlnZXItcDRzcw=="}

        wrong = f"http://scott:wrong-p4ss@127.0.0.1:{proxy.port}"
        connect(monkeypatch, reference_server, "web-node.test", proxy=wrong)
        error = poll_once(path, MrsDeployHook(), "no-such-batch")
    assert isinstance(error, MrsDeployConnectionError), error
    assert "407" in str(error) and f"http://***@127.0.0.1:{proxy.port}" in str(error)
    assert "wrong-p4ss" not in str(error)
    assert not error.retryable


@pytest.mark.parametrize("path", ["sync", "async"])
def test_no_proxy_hosts_go_straight_to_the_server(
    forward_proxy: ForwardProxy,
    reference_server: ReferenceServer,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    connect(
        monkeypatch,
        reference_server,
        "127.0.0.1",
        proxy=forward_proxy.url,
        no_proxy="localhost, 127.0.0.0/8",
    )
    error = poll_once(path, MrsDeployHook(), "no-such-batch")
    assert "404" in str(error), error  # the server answered, straight
    assert forward_proxy.passed == []


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_refusing_proxy_fails_with_a_message_naming_it(
    forward_proxy: ForwardProxy,
    reference_server: ReferenceServer,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    forward_proxy.refuse_all = True
    connect(monkeypatch, reference_server, "web-node.test", proxy=forward_proxy.url)
    error = poll_once(path, MrsDeployHook(), "b1")
    assert forward_proxy.targets() == ["POST http://web-node.test:12800/login"]
    # A plain-HTTP request is answered by the proxy itself: its 403 reads as the server's.
    assert "403" in str(error), error


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_proxy_that_is_down_fails_naming_the_proxy(
    reference_server: ReferenceServer, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    with ForwardProxy() as gone:
        port = gone.port
    connect(
        monkeypatch, reference_server, "web-node.test", proxy=f"http://u:pw-12345@127.0.0.1:{port}"
    )
    error = poll_once(path, MrsDeployHook(), "b1")
    assert isinstance(error, MrsDeployConnectionError), error
    assert f"the proxy http://***@127.0.0.1:{port}" in str(error), error
    assert "pw-12345" not in str(error)
