"""An extra whose name is a misspelling of one the provider reads is refused, naming the one it
looks like; any other unknown extra is logged once and ignored.

Extras are looked up by exact name, so before the fix ``trust_enviroment: false`` (meant:
``trust_env``), ``timout`` or ``Timeout`` was ignored without a word and the default used: with
a proxy in the environment, the login (password included) went through it although the user
meant to bypass it. The loopback tests below point the environment's proxy at a server of the
test's own and check it receives nothing, on the blocking and the async path.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

import airflow_provider.hooks
from airflow_provider.api.errors import MrsDeployConfigurationError
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.hooks.settings import KNOWN_EXTRAS
from airflow_provider.provider_info import CONN_FIELDS
from tests.hooks.test_azure_ad_settings import read as read_connection
from tests.support.loopback import LoopbackHTTPServer, LoopbackServer

PATHS = ("sync", "async")
BATCH = ("svc", "v1", "b1", 0)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "connection.md"
SETTINGS_LOGGER = "airflow_provider.hooks.settings"


class _Handler(BaseHTTPRequestHandler):
    """A web node (or a proxy: it answers absolute-form requests alike) that records every
    request line and body."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.received.append((self.command, self.path, body))
        if "/login" in self.path:
            answer = json.dumps(
                {
                    "token_type": "Bearer",
                    "access_token": "access-1",
                    "expires_in": 3600,
                    "expires_on": int(time.time()) + 3600,
                }
            ).encode()
        else:
            answer = b'["a.txt"]'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = _reply


class _Server(LoopbackHTTPServer):
    received: list[tuple[str, str, bytes]]
    lock: threading.Lock


class RecordingServer(LoopbackServer):
    """A loopback HTTP server recording what it received."""

    def __init__(self) -> None:
        server = _Server(_Handler)
        server.received = []
        server.lock = threading.Lock()
        self._recording = server
        super().__init__(server)

    @property
    def received(self) -> list[tuple[str, str, bytes]]:
        """``(method, target, body)`` of every request, in order."""
        with self._recording.lock:
            return list(self._recording.received)


@pytest.fixture
def env_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingServer]:
    """A recording server named by the environment's proxy variables (nothing bypasses it)."""
    with RecordingServer() as proxy:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        yield proxy


def connection(monkeypatch: pytest.MonkeyPatch, host: str, port: int, **extra: Any) -> str:
    """A new ``AIRFLOW_CONN_*`` connection (password login) with ``extra``; its id."""
    conn_id = f"mrsdeploy_names_{uuid.uuid4().hex[:10]}"
    body = {
        "conn_type": "mrsdeploy",
        "host": host,
        "port": port,
        "login": "admin",
        "password": "PASSWORD-SECRET",
        "extra": {"retry_min_wait": 0.01, "retry_max_wait": 0.02, **extra},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))
    return conn_id


def list_files(path: str, conn_id: str, times: int = 1) -> list[str]:
    """``list_batch_files`` ``times`` over on ``path`` with one new hook; the last answer."""
    hook = MrsDeployHook(conn_id)
    if path == "sync":
        try:
            return [hook.list_batch_files(*BATCH) for _ in range(times)][-1]
        finally:
            hook.close()

    async def run() -> list[str]:
        try:
            return [await hook.alist_batch_files(*BATCH) for _ in range(times)][-1]
        finally:
            await hook.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("extra", "meant"),
    [
        ({"trust_enviroment": False}, "trust_env"),
        ({"timout": 2}, "timeout"),
        ({"Timeout": 2}, "timeout"),
        ({"max_retry": 0}, "max_retries"),
        ({"AUTH": "password"}, "auth"),
    ],
)
@pytest.mark.parametrize("path", PATHS)
def test_a_misspelt_extra_is_refused_before_anything_is_sent(
    path: str,
    extra: dict[str, Any],
    meant: str,
    env_proxy: RecordingServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``mlserver.invalid`` resolves nowhere: before the fix the only way it answered was the
    environment's proxy, which then received the password."""
    conn_id = connection(monkeypatch, "mlserver.invalid", 12800, **extra)
    [name] = extra
    with pytest.raises(MrsDeployConfigurationError) as caught:
        list_files(path, conn_id)
    message = str(caught.value)
    assert f"{name!r} (did you mean {meant!r}?)" in message
    assert conn_id in message
    assert env_proxy.received == []


@pytest.mark.parametrize("path", PATHS)
def test_the_correct_name_is_honoured_and_an_unrelated_extra_is_only_logged_once(
    path: str,
    env_proxy: RecordingServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``trust_env: false`` spelled right goes straight to the server past the environment's
    proxy; ``team`` is like no name the provider reads: kept, logged once per reading of the
    connection, not per call."""
    with RecordingServer() as web_node:
        conn_id = connection(
            monkeypatch, "127.0.0.1", web_node.port, trust_env=False, team="ml-ops"
        )
        with caplog.at_level(logging.WARNING, logger=SETTINGS_LOGGER):
            assert list_files(path, conn_id, times=3) == ["a.txt"]
        assert len(web_node.received) == 4  # the login, then the three calls
    assert env_proxy.received == []
    warnings = [record.getMessage() for record in caplog.records if record.name == SETTINGS_LOGGER]
    assert warnings == [
        f"Connection {conn_id!r}: ignoring extras the provider does not read: 'team'"
    ]


def test_the_test_button_reports_the_misspelling_and_sends_nothing(
    env_proxy: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = connection(monkeypatch, "mlserver.invalid", 12800, trust_enviroment=False)
    ok, message = MrsDeployHook(conn_id).test_connection()
    assert not ok
    assert "'trust_enviroment' (did you mean 'trust_env'?)" in message
    assert env_proxy.received == []


# -- which names are known ------------------------------------------------------------------


def read(extra: dict[str, Any], **fields: Any) -> Any:
    """The settings of a connection with ``extra`` (a login by default)."""
    return read_connection(extra, **{"login": "admin", "password": "pw", **fields})


@pytest.mark.parametrize("name", sorted(KNOWN_EXTRAS))
def test_no_known_extra_is_refused_as_unknown(name: str) -> None:
    """Each name alone (with a value that may well be wrong for it): any refusal is about the
    value or the combination, never about the name."""
    try:
        read({name: "1"})
    except MrsDeployConfigurationError as err:
        assert "unknown extra" not in str(err)


def test_every_form_field_documented_and_legacy_extra_is_known() -> None:
    section = DOCS.read_text().split("\n## Extras\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))
    assert {"trust_env", "proxy", "timeout", "tenant_id"} <= documented
    assert documented | set(CONN_FIELDS) | {"token_refresh_lead"} <= KNOWN_EXTRAS


def _names_read_from_extras(source: str) -> set[str]:
    """String names the code looks up in a variable called ``extras``: ``extras.get("x")``,
    ``extras["x"]`` and helpers called as ``f(extras, "x", ...)``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and _is_extras(node.value):
            names |= _literal(node.slice)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "get" and _is_extras(func.value):
                names |= _literal(node.args[0]) if node.args else set()
            elif any(_is_extras(arg) for arg in node.args):
                names |= {name for arg in node.args for name in _literal(arg)}
    return names


def _is_extras(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "extras"


def _literal(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    return set()


def test_every_name_the_hooks_read_from_extras_is_known() -> None:
    """A name read in ``hooks/`` but missing from ``KNOWN_EXTRAS`` would be refused as a
    misspelling of its neighbour, or warned about, although it is read."""
    package = Path(airflow_provider.hooks.__file__).parent
    read_names: set[str] = set()
    for module in package.glob("*.py"):
        read_names |= _names_read_from_extras(module.read_text())
    assert {"trust_env", "verify", "proxy", "tenant_id", "instance_discovery"} <= read_names
    assert read_names <= KNOWN_EXTRAS, read_names - KNOWN_EXTRAS


# -- what is refused, and how ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("Verify", "verify"),
        (" timeout", "timeout"),
        ("trust-env", "trust_env"),
        ("cabundle", "ca_bundle"),
        ("retries", "max_retries"),
        ("schema", "scheme"),
        ("tenantid", "tenant_id"),
        ("Refresh_Lead", "refresh_lead"),
    ],
)
def test_case_spacing_and_spelling_differences_are_refused(name: str, meant: str) -> None:
    with pytest.raises(MrsDeployConfigurationError, match=re.escape(f"did you mean {meant!r}?")):
        read({name: "1"})


def test_several_misspellings_are_named_together_and_values_never_shown() -> None:
    with pytest.raises(MrsDeployConfigurationError) as caught:
        read({"timout": 5, "client_secrte": "s3cret-VALUE", "team": "x"})
    message = str(caught.value)
    assert "unknown extras 'client_secrte' (did you mean 'client_secret'?), 'timout'" in message
    assert "s3cret-VALUE" not in message and "team" not in message


def test_an_empty_misspelt_extra_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The connection form saves empty fields as ``null``: a name that sets nothing changes
    nothing, so a form saved by an older release is not refused for it."""
    with caplog.at_level(logging.WARNING, logger=SETTINGS_LOGGER):
        settings = read({"timout": None, "Timeout": ""})
    assert settings.timeout == 60
    assert "ignoring extras the provider does not read: 'Timeout', 'timout'" in caplog.text


def test_unrelated_names_are_not_taken_for_misspellings(caplog: pytest.LogCaptureFixture) -> None:
    unrelated = {"team": 1, "version": 2, "timezone": 3, "region_name": 4, "description": 5}
    with caplog.at_level(logging.WARNING, logger=SETTINGS_LOGGER):
        read(unrelated)
    assert caplog.text.count("ignoring extras") == 1
    for name in unrelated:
        assert repr(name) in caplog.text


def test_azure_ad_extras_are_all_accepted_and_misspelt_ones_refused() -> None:
    aad = {
        "auth": "azure_ad",
        "azure_credential": "client_secret",
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "cid-1",
        "client_secret": "s3cret-value",
        "resource": "api://mlserver",
        "authority_host": "https://login.microsoftonline.com",
        "instance_discovery": False,
        "authority_ca_bundle": "/etc/ssl/authority.pem",
        "proxy": "http://proxy.example.com:3128",
        "no_proxy": "localhost",
        "trust_env": False,
        "token_refresh_lead": 60,
    }
    settings = read(aad, login=None, password=None)
    assert settings.azure_ad is not None and settings.azure_ad.instance_discovery is False
    assert settings.token_refresh_lead == 60
    with pytest.raises(MrsDeployConfigurationError, match="did you mean 'authority_host'"):
        read({**aad, "authority_hots": "https://evil.example.com"}, login=None, password=None)
