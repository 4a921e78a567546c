"""The Azure AD part of a connection: which credential gets the server's tokens, read and
checked once, without importing ``azure-identity`` (that happens only when a token is wanted,
in :mod:`airflow_provider.hooks.azure_ad`).

The names follow mrsdeploy's ``remoteLoginAAD(authuri, tenantid, clientid, resource)``: the
tenant, the client (application) id, and the App ID URI of the server's Azure AD application
(``resource``; the token is asked for its ``/.default`` scope), plus the kind of credential.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider.api.errors import MrsDeployConfigurationError
from airflow_provider.api.identifiers import shown
from airflow_provider.hooks.extra_values import flag

CLIENT_SECRET = "client_secret"
MANAGED_IDENTITY = "managed_identity"
WORKLOAD_IDENTITY = "workload_identity"
#: The kinds of credential the ``azure_credential`` extra may name.
CREDENTIAL_KINDS = (CLIENT_SECRET, MANAGED_IDENTITY, WORKLOAD_IDENTITY)

#: The extras that only mean something with Azure AD authentication.
AZURE_EXTRAS = (
    "tenant_id",
    "client_id",
    "client_secret",
    "resource",
    "scope",
    "authority_host",
    "azure_credential",
    "federated_token_file",
    "instance_discovery",
    "authority_ca_bundle",
)

#: A tenant is a GUID or a domain name: it becomes a path segment of the authority's URLs.
_TENANT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")

#: The extra naming the package to install when ``azure-identity`` is missing.
INSTALL_HINT = "pip install 'airflow-provider-mrsdeploy[azure]'"


@dataclass(frozen=True)
class AzureAdSettings:
    """How a connection gets its access tokens from Azure AD (Microsoft Entra ID).

    The secret is left out of ``repr``.

    :param credential: one of :data:`CREDENTIAL_KINDS`.
    :param scope: the scope asked for (``<resource>/.default``).
    :param tenant_id: the directory (tenant) id; None for a managed identity, or for a
        workload identity that takes ``AZURE_TENANT_ID``.
    :param client_id: the application (client) id; None for a system-assigned managed
        identity, or for a workload identity that takes ``AZURE_CLIENT_ID``.
    :param client_secret: the client secret (``client_secret`` credential only).
    :param authority_host: the Azure AD host, e.g. ``https://login.microsoftonline.com``;
        None for azure-identity's default (``AZURE_AUTHORITY_HOST``, else the public cloud).
    :param federated_token_file: the workload identity's federated token file; None for
        ``AZURE_FEDERATED_TOKEN_FILE``.
    :param instance_discovery: let azure-identity check the authority with Microsoft's
        instance discovery (turn off for Azure Stack, AD FS or a private authority).
    :param authority_ca_bundle: CA bundle to verify the authority with; None for the system
        store (the connection's ``ca_bundle`` is the server's, usually another CA).
    """

    credential: str
    scope: str
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    authority_host: str | None = None
    federated_token_file: str | None = None
    instance_discovery: bool = True
    authority_ca_bundle: str | None = None

    @property
    def describe(self) -> str:
        """Who asks for tokens, for messages: kind, tenant and client, never the secret."""
        parts = [self.credential.replace("_", " ")]
        if self.tenant_id:
            parts.append(f"tenant {self.tenant_id}")
        if self.client_id:
            parts.append(f"client {self.client_id}")
        return f"Azure AD ({', '.join(parts)}, scope {self.scope})"

    @property
    def identity(self) -> str:
        """A digest of everything that decides which token is issued (secret included)."""
        text = "\0".join(
            str(value)
            for value in (
                self.credential,
                self.scope,
                self.tenant_id,
                self.client_id,
                self.client_secret,
                self.authority_host,
                self.federated_token_file,
            )
        )
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


#: Settings that only adjust how Azure AD is reached, and so say nothing about whether it is
#: used: the connection form of the Airflow UI sends them with every connection (a check box
#: always has a value), so they must not turn a password connection into an Azure AD one.
_MODIFIERS = frozenset({"instance_discovery"})


def azure_extras_given(extras: dict[str, Any]) -> list[str]:
    """The Azure AD settings the extras give, modifiers left out (they say nothing about
    whether Azure AD is used)."""
    return [
        key for key in AZURE_EXTRAS if key not in _MODIFIERS and extras.get(key) not in (None, "")
    ]


def wants_azure_ad(extras: dict[str, Any]) -> bool:
    """Whether the extras name any Azure AD setting (the ``auth`` kind is then inferred)."""
    return bool(azure_extras_given(extras))


def _text(extras: dict[str, Any], key: str) -> str | None:
    value = extras.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip():
        raise MrsDeployConfigurationError(
            f"connection extra {key!r} must be a non-empty string (got {shown(value)})"
        )
    return value.strip()


def _one_of(
    conn_id: str | None, extra: str | None, field_value: str | None, names: tuple[str, str]
) -> str | None:
    """The value given in the extra or in the connection field; both only when equal."""
    field_value = field_value or None
    if extra is not None and field_value is not None and extra != field_value:
        raise MrsDeployConfigurationError(
            f"connection {conn_id!r}: the {names[0]!r} extra and the connection's {names[1]} "
            "disagree; give it once"
        )
    return extra if extra is not None else field_value


#: What an authority's host and port may be written with: a DNS name, and a port.
_AUTHORITY_NETLOC = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")
#: Its path (an AD FS authority has one, ``/adfs``): plain segments only.
_AUTHORITY_PATH = re.compile(r"(?:/[A-Za-z0-9._~-]+)*/?")


def _authority(extras: dict[str, Any]) -> str | None:
    """The ``authority_host`` extra as ``https://host[:port][/path]``.

    Only a plain host name, port and path are taken. URL parsers disagree on anything else:
    for ``https://evil.example\\@login.microsoftonline.com`` Python's reads the host after the
    ``@`` (Microsoft's, which the Test button lets a client secret go to) where azure-identity's
    HTTP stack reads ``evil.example``, and would send the secret there.
    """
    host = _text(extras, "authority_host")
    if host is None:
        return None
    parts = urlsplit(host if "://" in host else f"https://{host}")
    if (
        parts.scheme != "https"
        or not _AUTHORITY_NETLOC.fullmatch(parts.netloc)
        or not _AUTHORITY_PATH.fullmatch(parts.path)
        or "?" in host  # a query or fragment, even an empty one
        or "#" in host
    ):
        raise MrsDeployConfigurationError(
            f"connection extra 'authority_host' must be an https URL of a host name, such as "
            f"'https://login.microsoftonline.com', with no user, backslash, query or other "
            f"characters (got {shown(host)})"
        )
    return f"https://{parts.netloc}{parts.path.rstrip('/')}"


def _scope(conn_id: str | None, extras: dict[str, Any]) -> str:
    scope, resource = _text(extras, "scope"), _text(extras, "resource")
    if scope is not None and resource is not None:
        raise MrsDeployConfigurationError(
            f"connection {conn_id!r}: give 'resource' or 'scope', not both "
            "('scope' is '<resource>/.default')"
        )
    if scope is not None:
        return scope
    if resource is None:
        raise MrsDeployConfigurationError(
            f"connection {conn_id!r} uses Azure AD but names no 'resource': set it to the App "
            "ID URI of the server's Azure AD application (mrsdeploy's remoteLoginAAD "
            "'resource'), e.g. 'api://mlserver', or give the full 'scope'"
        )
    return f"{resource.rstrip('/')}/.default"


def azure_ad_settings(
    conn_id: str | None, extras: dict[str, Any], login: str | None, password: str | None
) -> AzureAdSettings:
    """Read and check the Azure AD extras of a connection.

    The client id may be given as the ``client_id`` extra or the connection's login, the client
    secret as the ``client_secret`` extra or the connection's password (masked in the UI).

    :param conn_id: the connection id, named in messages.
    :param extras: the connection's extras.
    :param login: the connection's login.
    :param password: the connection's password (never quoted).
    :raises MrsDeployConfigurationError: on a missing, contradictory or mistyped setting.
    """
    kind = _text(extras, "azure_credential") or CLIENT_SECRET
    if kind not in CREDENTIAL_KINDS:
        raise MrsDeployConfigurationError(
            f"connection {conn_id!r}: 'azure_credential' must be one of "
            f"{', '.join(CREDENTIAL_KINDS)} (got {shown(kind)})"
        )
    tenant_id = _text(extras, "tenant_id")
    if tenant_id is not None and not _TENANT.fullmatch(tenant_id):
        raise MrsDeployConfigurationError(
            f"connection {conn_id!r}: 'tenant_id' must be a directory id (a GUID) or a domain "
            f"name such as 'contoso.onmicrosoft.com' (got {shown(tenant_id)})"
        )
    client_id = _one_of(conn_id, _text(extras, "client_id"), login, ("client_id", "login"))
    secret_extra = extras.get("client_secret") or None
    if secret_extra is not None and not isinstance(secret_extra, str):
        raise MrsDeployConfigurationError("connection extra 'client_secret' must be a string")
    secret = _one_of(conn_id, secret_extra, password, ("client_secret", "password"))
    token_file = _text(extras, "federated_token_file")
    where = f"connection {conn_id!r} (Azure AD, {kind})"
    if kind == CLIENT_SECRET:
        missing = [
            name
            for name, value in (
                ("tenant_id", tenant_id),
                ("client_id (or login)", client_id),
                ("client_secret (or password)", secret),
            )
            if not value
        ]
        if missing:
            raise MrsDeployConfigurationError(f"{where} needs {', '.join(missing)}")
    elif secret is not None:
        raise MrsDeployConfigurationError(
            f"{where}: a client secret (the 'client_secret' extra or the password) does not "
            f"apply to {kind}; remove it, or set 'azure_credential' to 'client_secret'"
        )
    if kind == MANAGED_IDENTITY and tenant_id is not None:
        raise MrsDeployConfigurationError(
            f"{where}: 'tenant_id' does not apply to a managed identity (its tenant is the "
            "resource's); remove it"
        )
    if kind == WORKLOAD_IDENTITY:
        missing = [
            f"{name} (or ${variable})"
            for name, value, variable in (
                ("tenant_id", tenant_id, "AZURE_TENANT_ID"),
                ("client_id", client_id, "AZURE_CLIENT_ID"),
                ("federated_token_file", token_file, "AZURE_FEDERATED_TOKEN_FILE"),
            )
            if not (value or os.environ.get(variable))
        ]
        if missing:
            raise MrsDeployConfigurationError(f"{where} needs {', '.join(missing)}")
    elif token_file is not None:
        raise MrsDeployConfigurationError(
            f"{where}: 'federated_token_file' applies to workload_identity only"
        )
    return AzureAdSettings(
        credential=kind,
        scope=_scope(conn_id, extras),
        tenant_id=tenant_id,
        client_id=client_id,
        client_secret=secret,
        authority_host=_authority(extras),
        federated_token_file=token_file,
        instance_discovery=flag(extras, "instance_discovery", default=True),
        authority_ca_bundle=_text(extras, "authority_ca_bundle"),
    )
