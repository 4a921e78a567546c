"""Connection settings: everything the hook needs from an Airflow connection, parsed once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from airflow_provider.api.errors import MrsDeployConfigurationError
from airflow_provider.api.identifiers import shown, token_problem

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_RETRY_MIN_WAIT = 1.0
DEFAULT_RETRY_MAX_WAIT = 30.0
DEFAULT_TOKEN_REFRESH_LEAD = 300.0
#: Largest response read into memory (JSON answers, ``get_batch_file``): 256 MiB.
DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
#: Largest file streamed to storage by ``iter_batch_file``: 16 GiB (0 means no limit).
DEFAULT_MAX_DOWNLOAD_BYTES = 16 * 1024 * 1024 * 1024

#: Whitespace, control characters (C0, DEL, C1) and lone surrogates: none belongs in a host.
_UNSAFE_HOST = re.compile("[\\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


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

    :param verify: TLS verification: True, False, or the path of a CA bundle.
    :param timeout: seconds allowed for each request.
    :param trust_env: honour the proxy variables (both transports, by requests' rules).
    :param user_agent: the ``User-Agent`` sent (the provider and its version).
    """

    verify: bool | str = True
    timeout: float = DEFAULT_TIMEOUT
    trust_env: bool = True
    user_agent: str = field(default_factory=_user_agent)

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
    :param verify: TLS verification: True, False, or the path of a CA bundle.
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
    """

    base_url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    verify: bool | str = True
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_min_wait: float = DEFAULT_RETRY_MIN_WAIT
    retry_max_wait: float = DEFAULT_RETRY_MAX_WAIT
    token_refresh_lead: float = DEFAULT_TOKEN_REFRESH_LEAD
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_download_bytes: int | None = DEFAULT_MAX_DOWNLOAD_BYTES
    trust_env: bool = True

    @property
    def transport(self) -> TransportConfig:
        """What the HTTP sessions are built from (see :class:`TransportConfig`)."""
        return TransportConfig(verify=self.verify, timeout=self.timeout, trust_env=self.trust_env)

    @property
    def uses_bearer_token(self) -> bool:
        """True when a supplied bearer token is used instead of logging in."""
        return self.bearer_token is not None


def _bool_or_path(value: Any, key: str) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        if text:
            return text
    raise MrsDeployConfigurationError(
        f"connection extra {key!r} must be true, false or a CA bundle path (got {value!r})"
    )


def _number(extras: dict[str, Any], key: str, default: float, minimum: float) -> float:
    value = extras.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MrsDeployConfigurationError(
            f"connection extra {key!r} must be a number (got {value!r})"
        ) from None
    if isinstance(value, bool) or number < minimum:
        raise MrsDeployConfigurationError(
            f"connection extra {key!r} must be a number >= {minimum} (got {value!r})"
        )
    return number


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


def _base_url(conn: ConnectionLike, extras: dict[str, Any]) -> str:
    host = (conn.host or "").strip()
    if not host:
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r} has no host: set it to the web node, "
            "e.g. 'mlserver.example.com' or 'https://mlserver.example.com:12800'"
        )
    _check_host(conn, host)
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
        port = conn.port or written
        hostname = parts.hostname
        prefix = parts.path.rstrip("/")
    else:
        hostname, _, prefix = host.partition("/")
        prefix = f"/{prefix}".rstrip("/") if prefix else ""
        if hostname.count(":") == 1:  # host:port (a bare IPv6 address has several colons)
            hostname, _, port_text = hostname.rpartition(":")
            port = conn.port or _written_port(conn, host, port_text)
        else:
            port = conn.port
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
    :raises MrsDeployConfigurationError: when the host or the credentials are missing, or an
        extra has a wrong type.
    """
    extras = dict(conn.extra_dejson or {})
    base_url = _base_url(conn, extras)
    bearer_token = extras.get("bearer_token") or None
    if bearer_token is not None and not isinstance(bearer_token, str):
        raise MrsDeployConfigurationError("connection extra 'bearer_token' must be a string")
    if bearer_token is not None:
        _check_bearer_token(conn, bearer_token)
    username = conn.login or None
    password = conn.password or None
    if bearer_token is None and not (username and password):
        raise MrsDeployConfigurationError(
            f"connection {conn.conn_id!r} needs credentials: set login and password, "
            "or the 'bearer_token' extra"
        )
    verify: bool | str = True
    if extras.get("verify") not in (None, ""):
        verify = _bool_or_path(extras["verify"], "verify")
    if extras.get("ca_bundle"):
        if verify is False:
            raise MrsDeployConfigurationError(
                "connection extras 'verify': false and 'ca_bundle' contradict each other"
            )
        verify = str(extras["ca_bundle"])
    resolved_timeout = (
        float(timeout)
        if timeout is not None
        else _number(extras, "timeout", DEFAULT_TIMEOUT, 0.001)
    )
    if resolved_timeout <= 0:
        raise MrsDeployConfigurationError(f"timeout must be > 0 (got {timeout!r})")
    resolved_retries = (
        int(max_retries)
        if max_retries is not None
        else _integer(extras, "max_retries", DEFAULT_MAX_RETRIES)
    )
    if resolved_retries < 0:
        raise MrsDeployConfigurationError(f"max_retries must be >= 0 (got {max_retries!r})")
    max_response_bytes = _integer(extras, "max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES)
    if max_response_bytes < 1:
        raise MrsDeployConfigurationError("connection extra 'max_response_bytes' must be >= 1")
    max_download_bytes = _integer(extras, "max_download_bytes", DEFAULT_MAX_DOWNLOAD_BYTES)
    min_wait = _number(extras, "retry_min_wait", DEFAULT_RETRY_MIN_WAIT, 0)
    max_wait = _number(extras, "retry_max_wait", DEFAULT_RETRY_MAX_WAIT, 0)
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
        timeout=resolved_timeout,
        max_retries=resolved_retries,
        retry_min_wait=min_wait,
        retry_max_wait=max_wait,
        token_refresh_lead=_number(extras, "token_refresh_lead", DEFAULT_TOKEN_REFRESH_LEAD, 0),
        max_response_bytes=max_response_bytes,
        max_download_bytes=max_download_bytes or None,
        trust_env=_flag(extras, "trust_env", default=True),
    )


def _flag(extras: dict[str, Any], key: str, *, default: bool) -> bool:
    value = extras.get(key)
    if value is None or value == "":
        return default
    parsed = _bool_or_path(value, key)
    if not isinstance(parsed, bool):
        raise MrsDeployConfigurationError(
            f"connection extra {key!r} must be true or false (got {value!r})"
        )
    return parsed
