"""Reading an ``mrsdeploy`` connection into settings (no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_provider.api import MrsDeployConfigurationError
from airflow_provider.hooks.settings import settings_from_connection


def _conn(**kwargs: Any) -> Connection:
    extra = kwargs.pop("extra", None)
    fields: dict[str, Any] = {"conn_type": "mrsdeploy", "login": "admin", "password": "s3cret-pw"}
    fields.update(kwargs)
    if extra is not None:
        fields["extra"] = json.dumps(extra)
    return Connection(conn_id="mrsdeploy_test", **fields)


def test_defaults() -> None:
    settings = settings_from_connection(_conn(host="127.0.0.1", port=12800))
    assert settings.base_url == "http://127.0.0.1:12800"
    assert (settings.username, settings.password) == ("admin", "s3cret-pw")
    assert settings.bearer_token is None and not settings.uses_bearer_token
    assert settings.verify is True
    assert settings.timeout == 60
    assert settings.max_retries == 5
    assert (settings.retry_min_wait, settings.retry_max_wait) == (1, 30)
    assert settings.token_refresh_lead == 300
    assert "s3cret-pw" not in repr(settings)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"host": "mlserver", "port": 443}, "https://mlserver:443"),
        (
            {"host": "mlserver", "port": 12800, "extra": {"scheme": "https"}},
            "https://mlserver:12800",
        ),
        ({"host": "mlserver", "port": 12800, "schema": "https"}, "https://mlserver:12800"),
        ({"host": "mlserver"}, "http://mlserver"),
        ({"host": "https://gw.example.com/mlserver/"}, "https://gw.example.com/mlserver"),
        ({"host": "https://gw.example.com:8443", "port": None}, "https://gw.example.com:8443"),
        ({"host": "http://gw.example.com", "port": 8080}, "http://gw.example.com:8080"),
        ({"host": "gw.example.com:9000/prefix"}, "http://gw.example.com:9000/prefix"),
        ({"host": "::1", "port": 12800}, "http://[::1]:12800"),
    ],
)
def test_base_url(fields: dict[str, Any], expected: str) -> None:
    assert settings_from_connection(_conn(**fields)).base_url == expected


def test_uri_form_with_string_extras() -> None:
    conn = Connection.from_uri(
        "mrsdeploy://admin:p%40ss-word@mlserver.example.com:12800/"
        "?scheme=https&verify=false&timeout=10&max_retries=2&retry_min_wait=0.5"
        "&retry_max_wait=4&token_refresh_lead=60",
        conn_id="uri",
    )
    settings = settings_from_connection(conn)
    assert settings.base_url == "https://mlserver.example.com:12800"
    assert settings.password == "p@ss-word"
    assert settings.verify is False
    assert (settings.timeout, settings.max_retries) == (10, 2)
    assert (settings.retry_min_wait, settings.retry_max_wait) == (0.5, 4)
    assert settings.token_refresh_lead == 60


def test_size_limits() -> None:
    settings = settings_from_connection(_conn(host="h"))
    assert settings.max_response_bytes == 256 * 1024**2
    assert settings.max_download_bytes == 16 * 1024**3
    settings = settings_from_connection(
        _conn(host="h", extra={"max_response_bytes": "1048576", "max_download_bytes": 0})
    )
    assert settings.max_response_bytes == 1024**2
    assert settings.max_download_bytes is None  # 0: no limit on streamed files


def test_ca_bundle_and_verify_path() -> None:
    settings = settings_from_connection(_conn(host="h", extra={"ca_bundle": "/etc/ssl/ca.pem"}))
    assert settings.verify == "/etc/ssl/ca.pem"
    settings = settings_from_connection(_conn(host="h", extra={"verify": "/etc/ssl/ca.pem"}))
    assert settings.verify == "/etc/ssl/ca.pem"
    with pytest.raises(MrsDeployConfigurationError, match="contradict"):
        settings_from_connection(_conn(host="h", extra={"verify": False, "ca_bundle": "/x"}))


def test_bearer_token_replaces_login() -> None:
    settings = settings_from_connection(
        _conn(host="h", login=None, password=None, extra={"bearer_token": "eyJ.token.value"})
    )
    assert settings.uses_bearer_token
    assert settings.bearer_token == "eyJ.token.value"
    assert settings.username is None
    assert "eyJ.token.value" not in repr(settings)


def test_hook_arguments_override_extras() -> None:
    conn = _conn(host="h", extra={"timeout": 5, "max_retries": 7})
    settings = settings_from_connection(conn, timeout=1.5, max_retries=0)
    assert (settings.timeout, settings.max_retries) == (1.5, 0)


def test_missing_host() -> None:
    with pytest.raises(MrsDeployConfigurationError, match="no host"):
        settings_from_connection(_conn(host=None))


@pytest.mark.parametrize(
    "fields",
    [{"login": None, "password": None}, {"password": None}, {"login": "", "password": "x"}],
)
def test_missing_credentials(fields: dict[str, Any]) -> None:
    with pytest.raises(MrsDeployConfigurationError, match="login and password"):
        settings_from_connection(_conn(host="h", **fields))


@pytest.mark.parametrize(
    "extra",
    [
        {"timeout": "soon"},
        {"timeout": 0},
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"retry_min_wait": 10, "retry_max_wait": 1},
        {"scheme": "ftp"},
        {"verify": 3},
        {"max_response_bytes": 0},
        {"max_response_bytes": "lots"},
        {"max_download_bytes": -1},
    ],
)
def test_bad_extras(extra: dict[str, Any]) -> None:
    with pytest.raises(MrsDeployConfigurationError):
        settings_from_connection(_conn(host="h", extra=extra))


def test_bad_host_url() -> None:
    with pytest.raises(MrsDeployConfigurationError):
        settings_from_connection(_conn(host="ftp://h"))


@pytest.mark.parametrize(
    ("extra", "lead"),
    [
        ({"refresh_lead": 45}, 45),
        ({"token_refresh_lead": "60"}, 60),  # the older name
        ({"refresh_lead": 45, "token_refresh_lead": "45"}, 45),
        ({"refresh_lead": None, "token_refresh_lead": 30}, 30),  # the form sends null
    ],
)
def test_the_refresh_lead_is_read_under_either_name(extra: dict[str, Any], lead: float) -> None:
    settings = settings_from_connection(_conn(host="h", extra=extra))
    assert settings.token_refresh_lead == lead


def test_two_refresh_leads_that_disagree_are_refused() -> None:
    with pytest.raises(MrsDeployConfigurationError, match="disagree"):
        settings_from_connection(
            _conn(host="h", extra={"refresh_lead": 1, "token_refresh_lead": 2})
        )


@pytest.mark.parametrize("key", ["token_refresh_lead", "refresh_lead", "timeout"])
def test_a_masked_value_saved_as_the_value_is_named_as_such(key: str) -> None:
    with pytest.raises(MrsDeployConfigurationError, match=r"Airflow's mask '\*\*\*'.*Set it again"):
        settings_from_connection(_conn(host="h", extra={key: "***"}))
