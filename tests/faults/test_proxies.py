"""Both transports route alike: through the proxy the environment names, or straight to the
server when the connection says ``trust_env: false``; and both say who they are.

The hostile stand-in plays the proxy: a client sending through a proxy asks it for the whole
URL (``GET http://web-node.test:12800/...``). The web node's name does not resolve, so a
request that skipped the proxy cannot reach anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider import __version__
from airflow_provider.api import MrsDeployConnectionError
from airflow_provider.hooks import MrsDeployHook
from tests.faults.helpers import poll_once
from tests.faults.hostile import HostileServer

WEB_NODE = "http://web-node.test:12800"


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    with HostileServer() as server:
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{server.port}")
        yield server


def point_at_web_node(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    connection = {
        "conn_type": "mrsdeploy",
        "host": "web-node.test",
        "port": 12800,
        "login": "admin",
        "password": "the-password",
        "extra": {"max_retries": 0, "timeout": 5, **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MRSDEPLOY_DEFAULT", json.dumps(connection))


@pytest.mark.parametrize("path", ["sync", "async"])
def test_both_transports_use_the_proxy_of_the_environment(
    proxy: HostileServer, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    point_at_web_node(monkeypatch)
    status = poll_once(path, MrsDeployHook())
    assert not isinstance(status, Exception), status
    seen = [(item.method, item.path) for item in proxy.script.seen]
    assert seen[0] == ("POST", f"{WEB_NODE}/login")
    assert seen[-1][1].startswith(f"{WEB_NODE}/api/mtService/v1.0.0/batch/b1")
    agents = {item.user_agent for item in proxy.script.seen}
    assert agents == {f"airflow-provider-mrsdeploy/{__version__}"}


@pytest.mark.parametrize("path", ["sync", "async"])
def test_trust_env_false_ignores_the_proxy_on_both_transports(
    proxy: HostileServer, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    point_at_web_node(monkeypatch, trust_env=False)
    error = poll_once(path, MrsDeployHook())
    assert isinstance(error, MrsDeployConnectionError), error
    assert proxy.script.seen == []
