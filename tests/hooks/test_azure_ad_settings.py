"""The Azure AD and proxy extras of a connection: read once, mistakes refused with a clear
message that never quotes a secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_provider.api.errors import MrsDeployConfigurationError
from airflow_provider.hooks.settings import settings_from_connection

AAD = {
    "auth": "azure_ad",
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "cid-1",
    "client_secret": "s3cret-value",
    "resource": "api://mlserver",
}


def read(extra: dict[str, Any], **fields: Any) -> Any:
    conn = Connection(
        conn_id="mrsdeploy_test",
        conn_type="mrsdeploy",
        host="ml.example.com",
        extra=json.dumps(extra),
        **fields,
    )
    return settings_from_connection(conn)


def test_client_secret_settings_are_read() -> None:
    settings = read(AAD)
    assert settings.auth == "azure_ad" and settings.username is None
    aad = settings.azure_ad
    assert (aad.credential, aad.scope, aad.client_secret) == (
        "client_secret",
        "api://mlserver/.default",
        "s3cret-value",
    )
    assert "s3cret-value" not in repr(settings) and "s3cret-value" not in settings.identity
    assert ("s3cret-value", "client_secret") in settings.secrets


def test_azure_ad_is_inferred_and_login_password_may_carry_client_and_secret() -> None:
    extra = {"tenant_id": "t-1", "resource": "api://mlserver"}
    settings = read(extra, login="cid-2", password="pw-secret-2")
    assert settings.auth == "azure_ad"
    assert (settings.azure_ad.client_id, settings.azure_ad.client_secret) == (
        "cid-2",
        "pw-secret-2",
    )


def form_extras(**chosen: Any) -> dict[str, Any]:
    """The extras the UI's connection form sends: every field, defaults filled in, the rest
    null (the form has no way to leave a field out, and a check box always has a value)."""
    from airflow_provider.provider_info import CONN_FIELDS

    sent = {name: field["schema"].get("default") for name, field in CONN_FIELDS.items()}
    return {**sent, **chosen}


@pytest.mark.parametrize("discovery", [True, False, "true", "false"])
def test_a_password_connection_saved_by_the_form_stays_a_password_connection(
    discovery: Any,
) -> None:
    settings = read(form_extras(instance_discovery=discovery), login="admin", password="pw")
    assert settings.auth == "password" and settings.username == "admin"
    assert settings.azure_ad is None


def test_an_azure_ad_connection_saved_by_the_form_is_read() -> None:
    settings = read(form_extras(**AAD))
    assert settings.auth == "azure_ad" and settings.azure_ad.tenant_id == AAD["tenant_id"]


def test_identities_differ_by_credential() -> None:
    assert read(AAD).identity != read({**AAD, "client_secret": "other-secret"}).identity
    assert read(AAD).identity != read({**AAD, "resource": "api://other"}).identity


@pytest.mark.parametrize(
    ("extra", "fields", "expected"),
    [
        ({**AAD, "azure_credential": "magic"}, {}, "must be one of client_secret"),
        ({k: v for k, v in AAD.items() if k != "tenant_id"}, {}, "needs tenant_id"),
        ({**AAD, "bearer_token": "abcdefgh"}, {}, "'bearer_token' is set too"),
        ({k: v for k, v in AAD.items() if k != "auth"} | {"bearer_token": "abcdefgh"}, {}, "both"),
        ({**AAD, "auth": "password"}, {"login": "a", "password": "b"}, "apply to Azure AD only"),
        ({**AAD, "auth": "kerberos"}, {}, "must be one of password"),
        ({k: v for k, v in AAD.items() if k != "resource"}, {}, "names no 'resource'"),
        ({**AAD, "scope": "api://x/.default"}, {}, "not both"),
        ({**AAD, "tenant_id": "../evil"}, {}, "directory id"),
        ({**AAD, "authority_host": "http://login.example.com"}, {}, "https URL"),
        ({**AAD, "client_id": "x"}, {"login": "y"}, "disagree"),
        (
            {
                "auth": "azure_ad",
                "azure_credential": "managed_identity",
                "resource": "r",
                "client_secret": "s3cret-value",
            },
            {},
            "does not apply to managed_identity",
        ),
        (
            {
                "auth": "azure_ad",
                "azure_credential": "managed_identity",
                "resource": "r",
                "tenant_id": "t",
            },
            {},
            "does not apply to a managed identity",
        ),
        ({**AAD, "instance_discovery": "maybe"}, {}, "true or false"),
    ],
)
def test_mistakes_are_refused_clearly(
    extra: dict[str, Any], fields: dict[str, Any], expected: str
) -> None:
    with pytest.raises(MrsDeployConfigurationError, match=expected) as raised:
        read(extra, **fields)
    assert "s3cret-value" not in str(raised.value)


def test_workload_identity_needs_its_values_or_their_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    extra = {"auth": "azure_ad", "azure_credential": "workload_identity", "resource": "r"}
    with pytest.raises(MrsDeployConfigurationError, match=r"AZURE_FEDERATED_TOKEN_FILE"):
        read(extra)
    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    monkeypatch.setenv("AZURE_CLIENT_ID", "c")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token")
    assert read(extra).azure_ad.credential == "workload_identity"


def test_proxy_extras_are_read_and_the_password_is_masked_never_shown() -> None:
    settings = read(
        {"proxy": "http://u:p%40ss-word@proxy.example.com:3128/", "no_proxy": "localhost, .corp"},
        login="a",
        password="b",
    )
    assert settings.proxy == "http://u:p%40ss-word@proxy.example.com:3128"
    assert settings.no_proxy == ("localhost", ".corp")
    assert settings.transport.proxy == settings.proxy
    assert "p%40ss-word" not in repr(settings.transport)
    assert ("p@ss-word", "proxy_password") in settings.secrets


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"proxy": "socks5://u:pw-secret@h:1080"}, "http\\(s\\) URL"),
        ({"proxy": "http://u:pw-secret@h:99999"}, "bad port"),
        ({"proxy": "http://u:pw-secret@h:3128/path"}, "http\\(s\\) URL"),
        ({"no_proxy": "localhost"}, "'proxy', which is not set"),
        ({"proxy": "http://h:3128", "no_proxy": "http://x"}, "not a host"),
        ({"proxy": "http://h:3128", "no_proxy": 5}, "comma-separated"),
    ],
)
def test_proxy_mistakes_are_refused_without_showing_the_password(
    extra: dict[str, Any], expected: str
) -> None:
    with pytest.raises(MrsDeployConfigurationError, match=expected) as raised:
        read(extra, login="a", password="b")
    assert "pw-secret" not in str(raised.value)


@pytest.mark.parametrize(
    "authority",
    [
        "https://evil.example\\@login.microsoftonline.com",
        "https://user@login.microsoftonline.com",
        "https://evil.example%5C@login.microsoftonline.com",
        "https://login.microsoftonline.com\\.evil.example",
        "https://login.microsoftonline.com/a\\b",
        "https://[::1]",
        "https://login.microsoftonline.com/?x=1",
        "https:///path",
    ],
)
def test_an_authority_host_url_parsers_may_read_differently_is_refused(authority: str) -> None:
    """Only a host name, a port and plain path segments: with anything else (a user, a
    backslash, an escape) Python's URL parser and the HTTP stack that sends the client secret
    may name different hosts."""
    with pytest.raises(MrsDeployConfigurationError, match="'authority_host' must be an https URL"):
        read({**AAD, "authority_host": authority})


@pytest.mark.parametrize(
    ("authority", "kept"),
    [
        ("login.microsoftonline.us", "https://login.microsoftonline.us"),
        ("https://adfs.contoso.example:8443/adfs/", "https://adfs.contoso.example:8443/adfs"),
        ("https://LOGIN.microsoftonline.com", "https://LOGIN.microsoftonline.com"),
    ],
)
def test_a_plain_authority_host_is_kept(authority: str, kept: str) -> None:
    assert read({**AAD, "authority_host": authority}).azure_ad.authority_host == kept
