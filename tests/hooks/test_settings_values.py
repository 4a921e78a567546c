"""Mistyped connection values are refused when the settings are read, alike on both paths.

Each would otherwise be accepted and fail later, differently on each path: an infinite or NaN
number (NaN is no timeout at all to aiohttp, infinity kills the request watchdog's thread), a
port out of range (a parse error the blocking path retries, a bare ``ValueError`` on the async
one), a URL whose ``://`` is mistyped (silently a server named ``http``), a mistyped
``verify`` (silently a CA file name). Every case runs on both paths against a loopback socket
that must see no connection, and checks the error's class and that it names the value.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider.api import MrsDeployConfigurationError
from airflow_provider.hooks.settings import MAX_SECONDS
from airflow_provider.waiting.progress import is_transient_poll_error
from tests.hooks.both_paths import (
    PATHS,
    HookMaker,
    assert_nothing_connected,
    connection_maker,
    poll,
    silent_listener,
)

NUMBER_EXTRAS = (
    "timeout",
    "max_retries",
    "retry_min_wait",
    "retry_max_wait",
    "refresh_lead",
    "token_refresh_lead",
    "max_response_bytes",
    "max_download_bytes",
)
NOT_FINITE: tuple[Any, ...] = ("inf", "-inf", "nan", "NaN", "1e400", math.inf, -math.inf)
SECONDS_EXTRAS = ("timeout", "retry_min_wait", "retry_max_wait", "refresh_lead")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with silent_listener() as sock:
        yield sock


@pytest.fixture
def make(monkeypatch: pytest.MonkeyPatch) -> HookMaker:
    return connection_maker(monkeypatch)


def refused(listener: socket.socket, hook: Any, path: str) -> str:
    """The message of the configuration error ``hook`` raises on ``path`` (nothing sent)."""
    with pytest.raises(MrsDeployConfigurationError) as info:
        poll(hook, path)
    assert type(info.value) is MrsDeployConfigurationError
    assert not is_transient_poll_error(info.value)
    assert_nothing_connected(listener)
    return str(info.value)


def _port(listener: socket.socket) -> int:
    return int(listener.getsockname()[1])


# -- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("value", NOT_FINITE, ids=repr)
@pytest.mark.parametrize("key", NUMBER_EXTRAS)
def test_non_finite_number_is_refused(
    make: HookMaker, listener: socket.socket, path: str, key: str, value: Any
) -> None:
    hook = make(host="127.0.0.1", port=_port(listener), extra={key: value})
    message = refused(listener, hook, path)
    assert f"connection extra {key!r} must be a finite number" in message


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("key", SECONDS_EXTRAS)
def test_seconds_beyond_a_week_are_refused(
    make: HookMaker, listener: socket.socket, path: str, key: str
) -> None:
    hook = make(host="127.0.0.1", port=_port(listener), extra={key: MAX_SECONDS + 1})
    message = refused(listener, hook, path)
    assert f"connection extra {key!r} must be a number <= 604800" in message


#: The settings attribute each seconds extra sets.
SECONDS_ATTRIBUTES = {
    "timeout": "timeout",
    "retry_min_wait": "retry_min_wait",
    "retry_max_wait": "retry_max_wait",
    "refresh_lead": "token_refresh_lead",
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("key", SECONDS_EXTRAS)
def test_a_week_is_accepted(make: HookMaker, key: str, path: str) -> None:
    hook = make(
        host="127.0.0.1", port=12800, extra={key: MAX_SECONDS, "retry_max_wait": MAX_SECONDS}
    )
    settings = hook.settings if path == "sync" else asyncio.run(hook.asettings())
    assert getattr(settings, SECONDS_ATTRIBUTES[key]) == MAX_SECONDS


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": MAX_SECONDS * 2}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": math.inf}, "max_retries"),
        ({"max_retries": math.nan}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
    ],
    ids=repr,
)
def test_hook_arguments_follow_the_rules_of_their_extras(
    make: HookMaker,
    listener: socket.socket,
    path: str,
    arguments: dict[str, Any],
    named: str,
) -> None:
    hook = make(host="127.0.0.1", port=_port(listener), **arguments)
    message = refused(listener, hook, path)
    assert message.startswith(f"{named} must be") and repr(arguments[named]) in message


# -- port and host ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("port", [70000, 65536, -1, -12800])
def test_port_field_out_of_range_is_refused(
    make: HookMaker, listener: socket.socket, path: str, port: int
) -> None:
    hook = make(host="127.0.0.1", port=port)
    message = refused(listener, hook, path)
    assert f"the port {port} is not a port; a port is a number from 1 to 65535" in message


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("port", [1, 65535])
def test_port_field_bounds_are_accepted(make: HookMaker, path: str, port: int) -> None:
    hook = make(host="mlserver.example.com", port=port)
    settings = hook.settings if path == "sync" else asyncio.run(hook.asettings())
    assert settings.base_url == f"http://mlserver.example.com:{port}"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "host",
    ["http:/127.0.0.1", "https//127.0.0.1", "HTTP:127.0.0.1", "http:\\\\127.0.0.1", "https:/h/ml"],
)
def test_mistyped_scheme_in_host_is_refused(
    make: HookMaker, listener: socket.socket, path: str, host: str
) -> None:
    hook = make(host=host, port=_port(listener))
    message = refused(listener, hook, path)
    assert f"the host {host!r} starts with a mistyped scheme" in message


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("host", ["https.example.com", "httpbin", "http-gateway.example.com"])
def test_hosts_that_merely_begin_with_http_are_accepted(
    make: HookMaker, path: str, host: str
) -> None:
    hook = make(host=host, port=12800)
    settings = hook.settings if path == "sync" else asyncio.run(hook.asettings())
    assert settings.base_url == f"http://{host}:12800"


# -- verify and ca_bundle ------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"verify": "flase"}, "verify"),
        ({"verify": "ture"}, "verify"),
        ({"verify": "certs/ca.pem"}, "verify"),
        ({"verify": 3}, "verify"),
        ({"ca_bundle": "ca.pem"}, "ca_bundle"),
        ({"ca_bundle": "~/ca.pem"}, "ca_bundle"),
        ({"ca_bundle": True}, "ca_bundle"),
    ],
    ids=repr,
)
def test_ca_setting_that_is_no_absolute_path_is_refused(
    make: HookMaker,
    listener: socket.socket,
    path: str,
    extra: dict[str, Any],
    named: str,
) -> None:
    hook = make(host=f"https://127.0.0.1:{_port(listener)}", extra=extra)
    message = refused(listener, hook, path)
    assert message.startswith(f"connection extra {named!r} must be")
    assert "absolute path of a CA bundle" in message and repr(extra[named]) in message


@pytest.mark.parametrize("path", PATHS)
def test_verify_and_ca_bundle_naming_different_files_are_refused(
    make: HookMaker, listener: socket.socket, path: str
) -> None:
    extra = {"verify": "/etc/ssl/one.pem", "ca_bundle": "/etc/ssl/two.pem"}
    hook = make(host=f"https://127.0.0.1:{_port(listener)}", extra=extra)
    message = refused(listener, hook, path)
    assert "'/etc/ssl/one.pem'" in message and "'/etc/ssl/two.pem'" in message
    assert "name different CA bundles" in message
