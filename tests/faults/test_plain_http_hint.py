"""``https`` against a server that speaks plain HTTP: the error says so and points at the scheme
and port, not at CA bundles, on the blocking and the async path.

OpenSSL reads the server's plain-HTTP answer (a ``400 Bad Request`` page) as a TLS record and
reports ``WRONG_VERSION_NUMBER`` (OpenSSL 3.0; later versions say ``RECORD_LAYER_FAILURE`` or
``PACKET_LENGTH_TOO_LONG``). Two real listeners are used: the standard library's HTTP server
and the reference server (uvicorn).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider.api import MrsDeployConnectionError
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.hooks.transport_errors import speaks_plain_http
from tests.faults.conftest import FAST_RETRIES
from tests.faults.helpers import MT, batch_trigger, run_trigger
from tests.support.server import ReferenceServer


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean (every TLS hello is logged as a bad request)."""


@pytest.fixture(scope="module")
def plain_listener() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["http.server", "reference-server"])
def plain_port(
    request: pytest.FixtureRequest, plain_listener: int, reference_server: ReferenceServer
) -> int:
    return plain_listener if request.param == "http.server" else reference_server.port


@pytest.fixture
def https_conn(plain_port: int, monkeypatch: pytest.MonkeyPatch) -> str:
    connection = {
        "conn_type": "mrsdeploy",
        "host": f"https://127.0.0.1:{plain_port}",
        "login": "admin",
        "password": "pw",
        "extra": FAST_RETRIES,
    }
    monkeypatch.setenv("AIRFLOW_CONN_MRSDEPLOY_DEFAULT", json.dumps(connection))
    return "mrsdeploy_default"


def check_hint(error: MrsDeployConnectionError, port: int) -> None:
    message = str(error)
    assert "plain HTTP" in message, message
    assert f"http://127.0.0.1:{port}" in message and "scheme" in message and "port" in message
    assert "ca_bundle" not in message and "verify" not in message
    assert error.retryable is False


@pytest.mark.parametrize(
    "call",
    [
        lambda hook: hook.list_services(),
        lambda hook: hook.get_batch_status(*MT, "b1"),
        lambda hook: hook.start_batch(*MT, b'[{"hp": 1, "wt": 2}]'),
    ],
    ids=["list_services", "get_batch_status", "start_batch"],
)
def test_blocking_calls_say_the_server_speaks_plain_http(
    https_conn: str, plain_port: int, call: object
) -> None:
    hook = MrsDeployHook()
    try:
        with pytest.raises(MrsDeployConnectionError) as info:
            call(hook)  # type: ignore[operator]
    finally:
        hook.close()
    check_hint(info.value, plain_port)


@pytest.mark.parametrize("method", ["aget_batch_status", "aget_batch_progress", "acancel_batch"])
def test_async_calls_say_the_server_speaks_plain_http(
    https_conn: str, plain_port: int, method: str
) -> None:
    async def run() -> None:
        hook = MrsDeployHook()
        try:
            await getattr(hook, method)(*MT, "b1")
        finally:
            await hook.aclose()

    with pytest.raises(MrsDeployConnectionError) as info:
        asyncio.run(run())
    check_hint(info.value, plain_port)


def test_the_trigger_ends_with_the_hint(https_conn: str, plain_port: int) -> None:
    payload = run_trigger(batch_trigger(["b1"]), timeout=60)
    assert payload["status"] == "error"
    assert "plain HTTP" in payload["message"] and "ca_bundle" not in payload["message"]


@pytest.mark.parametrize(
    "text",
    [
        "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)",
        "[SSL: RECORD_LAYER_FAILURE] record layer failure (_ssl.c:1000)",
        "[SSL: PACKET_LENGTH_TOO_LONG] packet length too long (_ssl.c:1000)",
        "[SSL: UNKNOWN_PROTOCOL] unknown protocol (_ssl.c:852)",
        "[SSL: HTTP_REQUEST] http request (_ssl.c:1000)",
    ],
)
def test_the_words_of_each_openssl_version_are_recognised(text: str) -> None:
    assert speaks_plain_http(text)


@pytest.mark.parametrize(
    "text",
    [
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate",
        "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version",
        "EOF occurred in violation of protocol (_ssl.c:2427)",
        "HTTPSConnectionPool(host='h', port=1): Max retries exceeded with url: /login",
    ],
)
def test_other_tls_failures_keep_the_certificate_hint(text: str) -> None:
    assert not speaks_plain_http(text)
