"""Connection settings: everything the hook needs from an Airflow connection, parsed once."""

from __future__ import annotations

import difflib
import functools
import hashlib
import ipaddress
import logging
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from airflow_provider.api.errors import MrsDeployConfigurationError
from airflow_provider.api.identifiers import shown, token_problem
from airflow_provider.hooks.azure_ad_settings import (
    AZURE_EXTRAS,
    AzureAdSettings,
    azure_ad_settings,
    azure_extras_given,
    wants_azure_ad,
)
from airflow_provider.hooks.extra_values import flag, spelled_flag
from airflow_provider.hooks.tls import SYSTEM_STORE, CaSource, ca_source
from airflow_provider.provider_info import CONN_FIELDS

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_RETRY_MIN_WAIT = 1.0
DEFAULT_RETRY_MAX_WAIT = 30.0
DEFAULT_TOKEN_REFRESH_LEAD = 300.0
#: Largest response read into memory (JSON answers, ``get_batch_file``): 256 MiB.
DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
#: Largest file streamed to storage by ``iter_batch_file``: 16 GiB (0 means no limit).
DEFAULT_MAX_DOWNLOAD_BYTES = 16 * 1024 * 1024 * 1024
#: Longest duration a seconds extra (``timeout``, the retry waits, ``refresh_lead``) may give:
#: a week. Far above any sensible value, and far below what the timers it ends up in accept
#: (``threading.Condition.wait`` and ``time.sleep`` raise OverflowError past about 292 years,
#: which would kill the request watchdog's thread).
MAX_SECONDS = 7 * 24 * 3600.0

#: A host that starts like a URL whose ``://`` is mistyped (``http:/h``, ``https//h``,
#: ``http:h``): read as a host name, it would silently become ``http://http/h``.
_MISTYPED_SCHEME = re.compile(r"https?(:|/)", re.IGNORECASE)

#: Whitespace, control characters (C0, DEL, C1) and lone surrogates: none belongs in a host.
_UNSAFE_HOST = re.compile("[\\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")

#: The ways a connection authenticates (the ``auth`` extra; inferred when it is not given).
PASSWORD = "password"
BEARER_TOKEN = "bearer_token"
AZURE_AD = "azure_ad"
AUTH_KINDS = (PASSWORD, BEARER_TOKEN, AZURE_AD)


#: Every extra the provider reads: the form's fields (Azure AD's among them), the ones only
#: given in JSON or a URI (``trust_env``), and older names still read (``token_refresh_lead``).
#: A name added to the form is known at once; one read outside it must be added here (a test
#: checks that every name this package reads is).
KNOWN_EXTRAS = (
    frozenset(CONN_FIELDS) | frozenset(AZURE_EXTRAS) | {"trust_env", "token_refresh_lead"}
)

#: How alike (``difflib`` ratio) an unknown extra's name must be to a known one to be taken
#: for a misspelling of it. Catches ``timout``, ``max_retry``, ``trust_enviroment``,
#: ``cabundle``; 0.6 (difflib's default) would also refuse unrelated keys people keep in
#: extras, such as ``version`` (for ``verify``) or ``timezone`` (for ``timeout``).
_MISSPELLING_CUTOFF = 0.7


class ConnectionLike(Protocol):
    """The attributes read from an Airflow connection (``airflow.sdk.Connection`` has them)."""

    @property
    def conn_id(self) -> str | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def schema(self) -> str | None: ...
    @property
    def login(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def _user_agent() -> str:
    from airflow_provider import __version__

    return f"airflow-provider-mrsdeploy/{__version__}"


@dataclass(frozen=True)
class TransportConfig:
    """Everything the HTTP sessions of a connection are built from, on both transports.

    The blocking session (requests) and the async session (aiohttp) are built from this one
    value, and async sessions are shared only between hooks whose values are equal: a setting
    added here reaches both transports and the sharing rule at once.

    :param trust: where the CAs verifying the server come from (the system store, a CA bundle
        file or directory), decided once for both transports (:mod:`~.tls`); None when
        verification is off.
    :param timeout: seconds allowed for each request.
    :param trust_env: honour the proxy variables (both transports, by requests' rules) when
        the connection names no ``proxy``.
    :param user_agent: the ``User-Agent`` sent (the provider and its version).
    :param proxy: the connection's own proxy URL (may hold credentials: left out of ``repr``);
        when set, the environment's proxy variables are not read.
    :param no_proxy: hosts (``host``, ``.domain``, ``host:port``, IP networks) reached without
        the connection's ``proxy``.
    """

    trust: CaSource | None = SYSTEM_STORE
    timeout: float = DEFAULT_TIMEOUT
    trust_env: bool = True
    user_agent: str = field(default_factory=_user_agent)
    proxy: str | None = field(default=None, repr=False)
    no_proxy: tuple[str, ...] = ()

    @property
    def headers(self) -> dict[str, str]:
        """Headers every request carries."""
        return {"Accept": "application/json", "User-Agent": self.user_agent}


@dataclass(frozen=True)
class MrsDeployConnectionSettings:
    """Resolved settings of an ``mrsdeploy`` connection.

    Secrets are left out of ``repr``.

    :param base_url: scheme, host, port and optional path prefix, without a trailing slash.
    :param username: login name, or None when a bearer token is used.
    :param password: password, or None.
    :param bearer_token: a ready access token (e.g. from Azure AD), or None.
    :param verify: TLS verification: True, False, or the absolute path of a CA bundle file or
        directory.
    :param ca_extra: the extra that named the CA path (``verify`` or ``ca_bundle``), named by
        the error when that path cannot be used.
    :param timeout: seconds allowed for each HTTP request.
    :param max_retries: retries after the first attempt for retryable failures.
    :param retry_min_wait: lower bound of the backoff between retries, seconds.
    :param retry_max_wait: upper bound of the backoff between retries, seconds.
    :param token_refresh_lead: refresh the access token this many seconds before it expires.
    :param max_response_bytes: largest response body read into memory; a larger one fails
        instead of exhausting the worker's memory.
    :param max_download_bytes: largest file streamed by ``iter_batch_file``; None for no limit.
    :param trust_env: honour the proxy variables (``HTTPS_PROXY``, ``HTTP_PROXY``,
        ``NO_PROXY``), on both transports alike (by requests' rules: see ``hooks.proxies``).
    :param auth: how the connection authenticates: one of :data:`AUTH_KINDS`.
    :param azure_ad: the Azure AD credential, when ``auth`` is ``azure_ad``.
    :param proxy: the connection's own proxy URL, or None (see :class:`TransportConfig`).
    :param no_proxy: hosts reached without ``proxy``.
    """

    base_url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    verify: bool | str = True
    ca_extra: str = "ca_bundle"
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_min_wait: float = DEFAULT_RETRY_MIN_WAIT
    retry_max_wait: float = DEFAULT_RETRY_MAX_WAIT
    token_refresh_lead: float = DEFAULT_TOKEN_REFRESH_LEAD
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_download_bytes: int | None = DEFAULT_MAX_DOWNLOAD_BYTES
    trust_env: bool = True
    auth: str = PASSWORD
    azure_ad: AzureAdSettings | None = None
    proxy: str | None = field(default=None, repr=False)
    no_proxy: tuple[str, ...] = ()

    @functools.cached_property
    def transport(self) -> TransportConfig:
        """What the HTTP sessions are built from (see :class:`TransportConfig`); built once,
        as the settings are frozen (the proxy of each request is looked up with it)."""
        return TransportConfig(
            trust=ca_source(self.verify, self.ca_extra, trust_env=self.trust_env),
            timeout=self.timeout,
            trust_env=self.trust_env,
            proxy=self.proxy,
            no_proxy=self.no_proxy,
        )

    @functools.cached_property
    def identity(self) -> str:
        """A digest of who the connection acts as (login and password, bearer token, or Azure
        AD credential): what hooks must share to share tokens and sessions. Never a secret.
        Hashed once per settings."""
        if self.azure_ad is not None:
            return f"azure_ad:{self.azure_ad.identity}"
        secret = self.bearer_token or self.password or ""
        text = f"{self.auth}\0{self.username or ''}\0{secret}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def token_issuer(self) -> str | None:
        """Who issues the access tokens when it is not the server (Azure AD), for messages."""
        return None if self.azure_ad is None else self.azure_ad.describe

    @property
    def secrets(self) -> list[tuple[str, str]]:
        """Every secret of the connection, with its name, for the log masker."""
        found = [
            (self.password or "", "password"),
            (self.bearer_token or "", "bearer_token"),
            (proxy_password(self.proxy) or "", "proxy_password"),
        ]
        if self.azure_ad is not None:
            found.append((self.azure_ad.client_secret or "", "client_secret"))
        return [(secret, name) for secret, name in found if secret]

    @property
    def uses_bearer_token(self) -> bool:
        """True when a supplied bearer token is used instead of logging in."""
        return self.bearer_token is not None


def _bool_or_path(value: Any, key: str) -> bool | str:
    """The ``verify`` extra: a flag, or the path of the CA bundle (see :func:`_ca_path`)."""
    parsed = spelled_flag(value)
    if parsed is not None:
        return parsed
    return _ca_path(value, key, "true, false or ")


def _ca_path(value: Any, key: str, choices: str = "") -> str:
    """A CA bundle path given in the extra ``key``, which must be absolute.

    A relative path would be looked up from each process's working directory, which differs
    between the workers, the triggerer and the API server; refusing it also catches a
    mistyped flag (``"flase"``), which would otherwise be taken for a file name and fail only
    when a request is made. Whether the file exists is checked when the sessions are built,
    on both transports alike (:func:`~airflow_provider.hooks.tls.verifying_context`): that
    reads the file system, which must not happen on the triggerer's event loop.
    """
    path = value.strip() if isinstance(value, str) else ""
    if not os.path.isabs(path):
        raise MrsDeployConfigurationError(
            f"connection extra {key!r} must be {choices}the absolute path of a CA bundle "
            f"(a PEM file, or a directory in OpenSSL's hashed layout) (got {shown(value)})"
        )
    return path


def _tls(extras: dict[str, Any]) -> tuple[bool | str, str]:
    """The ``verify`` and ``ca_bundle`` extras, checked: verification (True, False or a CA
    path) and the extra that named the path."""
    verify: bool | str = True
    if extras.get("verify") not in (None, ""):
        verify = _bool_or_path(extras["verify"], "verify")
    if extras.get("ca_bundle") in (None, ""):
        return verify, "verify"
    if verify is False:
        raise MrsDeployConfigurationError(
            "connection extras 'verify': false and 'ca_bundle' contradict each other"
        )
    bundle = _ca_path(extras["ca_bundle"], "ca_bundle")
    if isinstance(verify, str) and verify != bundle:
        raise MrsDeployConfigurationError(
            f"connection extras 'verify' ({shown(verify)}) and 'ca_bundle' ({shown(bundle)}) "
            "name different CA bundles; keep 'ca_bundle' only"
        )
    return bundle, "ca_bundle"


#: What Airflow shows instead of a value whose name looks secret (``token``, ``proxy``...).
MASKED_VALUE = "***"


def _number(
    extras: dict[str, Any], key: str, default: float, minimum: float, maximum: float = math.inf
) -> float:
    """The extra ``key`` as a finite number from ``minimum`` to ``maximum``.

    ``float`` also reads ``"inf"``, ``"nan"`` and ``1e400``: none means anything here, and each
    would fail later, differently on each transport (NaN is no timeout at all to aiohttp,
    infinity kills the request watchdog's thread), so they are refused now.
    """
    value = extras.get(key)
    if value is None or value == "":
        return default
    if value == MASKED_VALUE:
        raise MrsDeployConfigurationError(
            f"connection extra {key!r} holds Airflow's mask {MASKED_VALUE!r}, not a number: the "
            "connection was saved from a form or an export that showed the value masked. "
            "Set it again (or remove it to use the default)"
        )
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MrsDeployConfigurationError(
            f"connection extra {key!r} must be a number (got {value!r})"
        ) from None
    if not math.isfinite(number):
        raise MrsDeployConfigurationError(
            f"connection extra {key!r} must be a finite number (got {shown(value)})"
        )
    if isinstance(value, bool) or number < minimum:
        raise MrsDeployConfigurationError(
            f"connection extra {key!r} must be a number >= {minimum} (got {value!r})"
        )
    if number > maximum:
        raise MrsDeployConfigurationError(
            f"connection extra {key!r} must be a number <= {maximum:g} (got {value!r})"
        )
    return number


def _refresh_lead(conn: ConnectionLike, extras: dict[str, Any]) -> float:
    """The ``refresh_lead`` extra, or its older name ``token_refresh_lead``.

    Airflow masks every value whose name contains ``token`` wherever it shows it, the UI's
    connection form included, which then saved the mask as the value: the form offers
    ``refresh_lead``, and the older name is still read.
    """
    given = {
        key: extras[key]
        for key in ("refresh_lead", "token_refresh_lead")
        if extras.get(key) not in (None, "")
    }
    if len(given) == 2 and len(set(map(str, given.values()))) == 2:
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: the extras 'refresh_lead' and 'token_refresh_lead' "
            "(its older name) disagree; keep 'refresh_lead' only"
        )
    key = next(iter(given), "refresh_lead")
    return _number(extras, key, DEFAULT_TOKEN_REFRESH_LEAD, 0, MAX_SECONDS)


def _integer(extras: dict[str, Any], key: str, default: int) -> int:
    number = _number(extras, key, float(default), 0)
    if number != int(number):
        raise MrsDeployConfigurationError(
            f"connection extra {key!r} must be a whole number (got {extras.get(key)!r})"
        )
    return int(number)


def _scheme(conn: ConnectionLike, extras: dict[str, Any], port: int | None) -> str:
    candidates = (extras.get("scheme"), conn.schema)
    for candidate in candidates:
        if candidate:
            scheme = str(candidate).strip().lower()
            if scheme not in ("http", "https"):
                raise MrsDeployConfigurationError(
                    f"connection scheme must be 'http' or 'https' (got {candidate!r})"
                )
            return scheme
    return "https" if port == 443 else "http"


def _check_host(conn: ConnectionLike, host: str) -> None:
    """Refuse a host that is more than scheme, address, port and path prefix.

    Credentials written into the host (``admin:pw@host``) would end up in the base URL, so in
    every error message and log line that shows it: that message names neither the host nor
    any part of it, since the password may be anywhere in it.
    """
    if "@" in host:
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: the host holds an '@', as in user:password@host. "
            "Never write credentials into the host (they would show in every URL and message): "
            "put the user name in the connection's login and the password in its password, "
            "and set the host to the server's address alone, e.g. 'mlserver.example.com' or "
            "'https://mlserver.example.com:12800'"
        )
    unsafe = _UNSAFE_HOST.search(host)
    if unsafe is not None:
        char = unsafe.group()
        if char.isspace():
            kind = "whitespace"
        elif "\ud800" <= char <= "\udfff":
            kind = "a lone surrogate"
        else:
            kind = "a control character"
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: the host {shown(host)} holds {kind} "
            f"(U+{ord(char):04X}); remove it, the host is the server's address alone"
        )
    if "?" in host or "#" in host:
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: the host {shown(host)} has a query or fragment "
            "('?...' or '#...'); remove it: give only the scheme, address, port and path "
            "prefix, the provider builds each request's path and query itself"
        )


def _bad_port(conn: ConnectionLike, host: str) -> MrsDeployConfigurationError:
    return MrsDeployConfigurationError(
        f"connection {conn.conn_id!r}: the host {shown(host)} has a bad port; a port is a "
        "number from 1 to 65535"
    )


def _written_port(conn: ConnectionLike, host: str, text: str) -> int | None:
    """The port written after the host name's ``:`` (None when empty), checked."""
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
        raise _bad_port(conn, host)
    return int(text)


def _port_field(conn: ConnectionLike) -> int | None:
    """The connection's Port field, checked; None when it is not set (empty or 0).

    Out of range, it would be written into the base URL as it is, and fail only at the first
    request: as a parse error the blocking transport retries, a bare ``ValueError`` on the
    async one.
    """
    port: Any = conn.port
    if port in (None, "", 0):
        return None
    if isinstance(port, str) and port.strip().isascii() and port.strip().isdigit():
        port = int(port.strip())
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: the port {shown(conn.port)} is not a port; a port "
            "is a number from 1 to 65535"
        )
    return port


def _check_scheme_spelling(conn: ConnectionLike, host: str) -> None:
    """Refuse a host that begins like a URL whose ``://`` is mistyped (``http:/h``,
    ``https//h``), which would otherwise be read as a server named ``http`` or ``https``."""
    if "://" not in host and _MISTYPED_SCHEME.match(host):
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: the host {shown(host)} starts with a mistyped "
            "scheme; write a URL as 'https://mlserver.example.com:12800', or give the host "
            "alone, e.g. 'mlserver.example.com'"
        )


def _base_url(conn: ConnectionLike, extras: dict[str, Any]) -> str:
    host = (conn.host or "").strip()
    if not host:
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r} has no host: set it to the web node, "
            "e.g. 'mlserver.example.com' or 'https://mlserver.example.com:12800'"
        )
    _check_host(conn, host)
    _check_scheme_spelling(conn, host)
    field_port = _port_field(conn)
    if "://" in host:
        parts = urlsplit(host)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise MrsDeployConfigurationError(
                f"connection host {shown(host)} is not an http(s) URL"
            )
        try:
            written = parts.port
        except ValueError:  # not a number, or out of range
            raise _bad_port(conn, host) from None
        if written == 0:
            raise _bad_port(conn, host)
        port = field_port or written
        hostname = parts.hostname
        prefix = parts.path.rstrip("/")
    else:
        hostname, _, prefix = host.partition("/")
        prefix = f"/{prefix}".rstrip("/") if prefix else ""
        if hostname.count(":") == 1:  # host:port (a bare IPv6 address has several colons)
            hostname, _, port_text = hostname.rpartition(":")
            port = field_port or _written_port(conn, host, port_text)
        else:
            port = field_port
        if not hostname:
            raise MrsDeployConfigurationError(
                f"connection {conn.conn_id!r}: the host {shown(host)} names no server"
            )
        scheme = _scheme(conn, extras, port)
    if ":" in hostname and not hostname.startswith("["):
        hostname = f"[{hostname}]"
    netloc = f"{hostname}:{port}" if port else hostname
    return f"{scheme}://{netloc}{prefix}"


def _check_bearer_token(conn: ConnectionLike, token: str) -> None:
    """Refuse a bearer token that cannot go into an ``Authorization`` header as it is.

    The message never quotes the token.
    """
    problem = token_problem(token)
    if problem is None:
        return
    prefixed = token[:7].lower() == "bearer "
    raise MrsDeployConfigurationError(
        f"connection {conn.conn_id!r}: the 'bearer_token' extra cannot be sent as a bearer "
        f"token: {problem}. Give the token alone, as visible ASCII without spaces, quotes or "
        "line breaks"
        + (" (without the 'Bearer ' prefix: the provider adds it)" if prefixed else "")
    )


def _meant(name: str) -> str | None:
    """The known extra ``name`` is a misspelling of (None: it looks like none of them).

    Names are compared as written (``Timeout`` is not ``timeout``, which is what is read), so
    a name differing only in case, surrounding spaces or ``-`` for ``_`` is a misspelling too.
    """
    plain = name.strip().lower().replace("-", "_")
    if plain in KNOWN_EXTRAS:
        return plain
    close = difflib.get_close_matches(plain, KNOWN_EXTRAS, n=1, cutoff=_MISSPELLING_CUTOFF)
    return close[0] if close else None


def _check_extra_names(conn: ConnectionLike, extras: dict[str, Any]) -> None:
    """Refuse an extra whose name is a misspelling of one the provider reads; warn of others.

    Extras are looked up by exact name, so a misspelt one (``trust_enviroment: false``,
    ``timout``, ``Timeout``) would be ignored without a word and its default used instead:
    a login sent through the environment's proxy the user meant to bypass, a timeout or a
    retry count other than the one set. Such a name (one with a value: an empty one changes
    nothing) fails before anything is sent, naming the extra it looks like. Any other unknown
    name is only logged, once per reading of the connection (not per request): extras may
    hold keys meant for something else. Names only are shown, never values.

    :raises MrsDeployConfigurationError: naming every misspelt extra and what it looks like.
    """
    unknown = sorted(str(name) for name in extras if name not in KNOWN_EXTRAS)
    if not unknown:
        return
    misspelt: list[str] = []
    ignored: list[str] = []
    for name in unknown:
        meant = _meant(name)
        if meant is not None and extras[name] not in (None, ""):
            misspelt.append(f"{shown(name)} (did you mean {meant!r}?)")
        else:
            ignored.append(shown(name))
    if misspelt:
        what = "extra" if len(misspelt) == 1 else "extras"
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: unknown {what} {', '.join(misspelt)}; extra names "
            "are case-sensitive and a misspelt one would be ignored, its default used instead. "
            "Rename it to the extra meant (see the connection's extras in the docs), or, if it "
            "is not meant for this provider, to a name that does not look like one of its own"
        )
    log.warning(
        "Connection %r: ignoring extras the provider does not read: %s",
        conn.conn_id,
        ", ".join(ignored),
    )


def settings_from_connection(
    conn: ConnectionLike,
    *,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> MrsDeployConnectionSettings:
    """Read an ``mrsdeploy`` connection.

    :param conn: the Airflow connection.
    :param timeout: overrides the ``timeout`` extra when given.
    :param max_retries: overrides the ``max_retries`` extra when given.
    :raises MrsDeployConfigurationError: when the host or the credentials are missing, an
        extra has a wrong type, or an extra's name is a misspelling of one the provider reads
        (any other unknown extra is logged as a warning and ignored).
    """
    extras = dict(conn.extra_dejson or {})
    _check_extra_names(conn, extras)
    base_url = _base_url(conn, extras)
    bearer_token = extras.get("bearer_token") or None
    if bearer_token is not None and not isinstance(bearer_token, str):
        raise MrsDeployConfigurationError("connection extra 'bearer_token' must be a string")
    if bearer_token is not None:
        _check_bearer_token(conn, bearer_token)
    username = conn.login or None
    password = conn.password or None
    auth = _auth_kind(conn, extras, bearer_token is not None)
    azure_ad = None
    if auth == AZURE_AD:
        azure_ad = azure_ad_settings(conn.conn_id, extras, username, password)
        username = password = None
    elif auth == PASSWORD and not (username and password):
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r} needs credentials: set login and password, "
            "the 'bearer_token' extra, or Azure AD ('auth': 'azure_ad')"
        )
    proxy, no_proxy = _proxy(conn, extras)
    verify, ca_extra = _tls(extras)
    resolved_timeout = (
        _timeout_argument(timeout)
        if timeout is not None
        else _number(extras, "timeout", DEFAULT_TIMEOUT, 0.001, MAX_SECONDS)
    )
    resolved_retries = (
        _retries_argument(max_retries)
        if max_retries is not None
        else _integer(extras, "max_retries", DEFAULT_MAX_RETRIES)
    )
    max_response_bytes = _integer(extras, "max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES)
    if max_response_bytes < 1:
        raise MrsDeployConfigurationError("connection extra 'max_response_bytes' must be >= 1")
    max_download_bytes = _integer(extras, "max_download_bytes", DEFAULT_MAX_DOWNLOAD_BYTES)
    min_wait = _number(extras, "retry_min_wait", DEFAULT_RETRY_MIN_WAIT, 0, MAX_SECONDS)
    max_wait = _number(extras, "retry_max_wait", DEFAULT_RETRY_MAX_WAIT, 0, MAX_SECONDS)
    if max_wait < min_wait:
        raise MrsDeployConfigurationError(
            f"retry_max_wait ({max_wait}) must be >= retry_min_wait ({min_wait})"
        )
    return MrsDeployConnectionSettings(
        base_url=base_url,
        username=None if bearer_token else username,
        password=None if bearer_token else password,
        bearer_token=bearer_token,
        verify=verify,
        ca_extra=ca_extra,
        timeout=resolved_timeout,
        max_retries=resolved_retries,
        retry_min_wait=min_wait,
        retry_max_wait=max_wait,
        token_refresh_lead=_refresh_lead(conn, extras),
        max_response_bytes=max_response_bytes,
        max_download_bytes=max_download_bytes or None,
        trust_env=flag(extras, "trust_env", default=True),
        auth=auth,
        azure_ad=azure_ad,
        proxy=proxy,
        no_proxy=no_proxy,
    )


def _timeout_argument(timeout: float) -> float:
    """The hook's ``timeout`` argument, held to the rules of the extra it overrides."""
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (0 < seconds <= MAX_SECONDS):  # NaN fails every comparison
        raise MrsDeployConfigurationError(
            f"timeout must be a number > 0 and <= {MAX_SECONDS:g} (got {timeout!r})"
        )
    return seconds


def _retries_argument(max_retries: int) -> int:
    """The hook's ``max_retries`` argument, held to the rules of the extra it overrides."""
    try:
        retries = int(max_retries)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
        retries = -1
    if retries < 0 or (isinstance(max_retries, float) and retries != max_retries):
        raise MrsDeployConfigurationError(
            f"max_retries must be a whole number >= 0 (got {max_retries!r})"
        )
    return retries


def _auth_kind(conn: ConnectionLike, extras: dict[str, Any], has_bearer_token: bool) -> str:
    """The ``auth`` extra, checked against the credentials given, or inferred from them."""
    given = extras.get("auth")
    azure = wants_azure_ad(extras)
    if given in (None, ""):
        if has_bearer_token and azure:
            raise MrsDeployConfigurationError(
                f"connection {conn.conn_id!r} has both a 'bearer_token' and Azure AD extras; "
                "keep one (Azure AD renews its tokens, a static bearer token cannot be renewed)"
            )
        return BEARER_TOKEN if has_bearer_token else AZURE_AD if azure else PASSWORD
    kind = str(given).strip().lower()
    if kind not in AUTH_KINDS:
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: extra 'auth' must be one of {', '.join(AUTH_KINDS)} "
            f"(got {shown(given)})"
        )
    if has_bearer_token and kind != BEARER_TOKEN:
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: 'auth' is {kind!r} but a 'bearer_token' is set too; "
            "remove the bearer token, or set 'auth' to 'bearer_token'"
        )
    if kind == BEARER_TOKEN and not has_bearer_token:
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: 'auth' is 'bearer_token' but no 'bearer_token' "
            "extra is set"
        )
    if kind != AZURE_AD and azure:
        named = azure_extras_given(extras)
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: the extras {', '.join(named)} apply to Azure AD "
            f"only, but 'auth' is {kind!r}; set 'auth' to 'azure_ad' or remove them"
        )
    return kind


def proxy_password(proxy: str | None) -> str | None:
    """The password written in a proxy URL, or None (for the log masker)."""
    if not proxy:
        return None
    password = urlsplit(proxy).password
    return unquote(password) if password else None


def shown_proxy(proxy: str) -> str:
    """A proxy URL as messages show it: credentials replaced by ``***``."""
    parts = urlsplit(proxy)
    if parts.username is None and parts.password is None:
        return proxy
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"***@{host}").geturl()


def _proxy(conn: ConnectionLike, extras: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """The ``proxy`` and ``no_proxy`` extras, checked (the message never shows a password)."""
    proxy = extras.get("proxy")
    no_proxy_value = extras.get("no_proxy")
    if proxy in (None, ""):
        if no_proxy_value not in (None, "", []):
            raise MrsDeployConfigurationError(
                f"connection {conn.conn_id!r}: 'no_proxy' applies to the connection's 'proxy', "
                "which is not set (to ignore the environment's proxy, set 'trust_env': false)"
            )
        return None, ()
    if not isinstance(proxy, str):
        raise MrsDeployConfigurationError("connection extra 'proxy' must be a URL string")
    proxy = proxy.strip()
    safe = shown(shown_proxy(proxy)) if "://" in proxy else "(not a URL)"
    try:
        parts = urlsplit(proxy)
        port = parts.port
    except ValueError:
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: extra 'proxy' {safe} has a bad port"
        ) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or _UNSAFE_HOST.search(proxy)
        or port == 0
    ):
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: extra 'proxy' must be an http(s) URL of a proxy, "
            f"such as 'http://proxy.example.com:3128' or 'http://user:password@proxy:3128' "
            f"(got {safe})"
        )
    return proxy.rstrip("/"), _no_proxy(conn, no_proxy_value)


def _no_proxy(conn: ConnectionLike, value: Any) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = value
    else:
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r}: extra 'no_proxy' must be a comma-separated string "
            f"or a list of hosts (got {shown(value)})"
        )
    hosts = tuple(item.strip().lower() for item in items if item.strip())
    for host in hosts:
        if "/" in host:
            try:
                ipaddress.ip_network(host, strict=False)
            except ValueError:
                raise MrsDeployConfigurationError(
                    f"connection {conn.conn_id!r}: 'no_proxy' entry {shown(host)} is not a "
                    "host, domain or IP network"
                ) from None
        elif _UNSAFE_HOST.search(host) or "://" in host or "@" in host:
            raise MrsDeployConfigurationError(
                f"connection {conn.conn_id!r}: 'no_proxy' entry {shown(host)} is not a host, "
                "domain or IP network (write 'host', '.domain', 'host:port' or '10.0.0.0/8')"
            )
    return hosts
