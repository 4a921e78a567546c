"""Connection hosts and bearer tokens that cannot be used as they are fail with a message a
user can act on, and never show a password or token (no network)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from airflow.sdk import Connection
from hypothesis import example, given
from hypothesis import strategies as st

from airflow_provider.api import MrsDeployConfigurationError
from airflow_provider.hooks.settings import settings_from_connection

#: Every generated password holds this mark, which no message or host otherwise holds: a
#: message or base URL that shows any part of the host around it shows the mark.
MARK = "\u00a7"


def conn(host: str | None, **fields: Any) -> Connection:
    extra = fields.pop("extra", None)
    values: dict[str, Any] = {"conn_type": "mrsdeploy", "login": "admin", "password": "pw-12345"}
    values.update(fields)
    if extra is not None:
        values["extra"] = json.dumps(extra)
    return Connection(conn_id="mrsdeploy_test", host=host, **values)


def refused(host: str, **fields: Any) -> str:
    with pytest.raises(MrsDeployConfigurationError) as info:
        settings_from_connection(conn(host, **fields))
    assert isinstance(info.value, ValueError)
    return str(info.value)


@pytest.mark.parametrize(
    "host",
    [
        "admin:Secret-pw@mlserver:12800",
        "https://admin:Secret-pw@mlserver.example.com",
        "http://admin:Secret-pw@127.0.0.1:12800/prefix",
        "admin:Secret/pw@mlserver",  # a '/' in the password hides the '@' from a URL parser
        "https://admin:Secret-pw:x@host",
        "admin:Secret-pw@",
        "user@mlserver",
    ],
)
def test_credentials_in_the_host_are_refused_without_showing_them(host: str) -> None:
    message = refused(host)
    assert "Secret" not in message and "pw" not in message.replace("password", "")
    assert "login" in message and "password" in message and "'@'" in message


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("mlserver .example.com", "whitespace"),
        ("mlserver\r\nX-Injected: 1", "whitespace"),
        ("mls\x00erver", "control character"),
        ("https://mlserver\x7f", "control character"),
        ("ml\x9bserver", "control character"),
        ("ml\x85server", "whitespace"),
        ("ml\udc80server", "lone surrogate"),
        ("https://mlserver/?token=1", "query or fragment"),
        ("mlserver:12800/#top", "query or fragment"),
        ("mlserver:port", "bad port"),
        ("https://mlserver:99999", "bad port"),
        ("https://mlserver:0", "bad port"),
        (":12800", "names no server"),
        ("ftp://mlserver", "not an http(s) URL"),
    ],
)
def test_hosts_that_are_not_an_address_are_refused(host: str, words: str) -> None:
    message = refused(host)
    assert words in message
    assert all(char.isprintable() for char in message), message


def test_surrounding_whitespace_is_still_forgiven() -> None:
    settings = settings_from_connection(conn("  https://mlserver.example.com:8443/ml/ \n"))
    assert settings.base_url == "https://mlserver.example.com:8443/ml"


HOSTNAMES = st.sampled_from(["mlserver", "127.0.0.1", "ml.example.com", "[::1]"])
PASSWORDS = st.builds(
    lambda head, tail: head + MARK + tail,
    st.text(max_size=12),
    st.text(max_size=12),
)


@st.composite
def hosts_with_a_password(draw: st.DrawFn) -> tuple[str, str]:
    """A host written with ``user:password@`` in any of the forms users write, and the
    password (raw, or percent-encoded as in a URL)."""
    password = draw(PASSWORDS)
    written = draw(st.sampled_from([password, quote(password, safe="")]))
    user = draw(st.sampled_from(["admin", "a", ""]))
    hostname = draw(HOSTNAMES)
    port = draw(st.sampled_from(["", ":12800", ":x"]))
    prefix = draw(st.sampled_from(["", "/", "/mlserver"]))
    scheme = draw(st.sampled_from(["", "http://", "https://", "HTTPS://"]))
    return f"{scheme}{user}:{written}@{hostname}{port}{prefix}", password


@given(hosts_with_a_password(), st.sampled_from([None, 12800]))
@example(("admin:p" + MARK + "@mlserver:12800", "p" + MARK), None)
@example(("https://admin:a/b" + MARK + "@h", "a/b" + MARK), None)
@example(("admin:" + MARK + "\n@h", MARK + "\n"), 443)
def test_a_password_never_reaches_a_message_or_the_base_url(
    case: tuple[str, str], port: int | None
) -> None:
    host, password = case
    try:
        settings = settings_from_connection(conn(host, port=port))
    except MrsDeployConfigurationError as err:
        shown = str(err)
    else:
        shown = settings.base_url + repr(settings)
    for form in (password, quote(password, safe=""), MARK, quote(MARK), repr(MARK)[1:-1]):
        assert form not in shown


# -- bearer tokens ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "words"),
    [
        ("eyJ0eXAi.payload.sig\n", "line break at character 21"),
        ("Bearer eyJ0eXAi.payload.sig", "without the 'Bearer ' prefix"),
        ("eyJ0eXAi payload", "whitespace"),
        ("eyJ0eXAi\x00payload", "control character U+0000"),
        ("eyJ0eXAi\u00e9payload", "non-ASCII character U+00E9"),
        ("eyJ0eXAi\udc80payload", "lone surrogate"),
    ],
)
def test_a_bearer_token_that_cannot_be_sent_is_refused_without_showing_it(
    token: str, words: str
) -> None:
    message = refused("mlserver", extra={"bearer_token": token})
    assert words in message and "bearer_token" in message
    assert "eyJ0eXAi" not in message and "payload" not in message
    assert all(char.isprintable() for char in message), message


def test_a_visible_ascii_bearer_token_is_taken_as_it_is() -> None:
    token = "eyJ0eXAi.pay~load_-+/=.sig"
    settings = settings_from_connection(conn("mlserver", extra={"bearer_token": token}))
    assert settings.bearer_token == token
