"""Blocking transport (requests): sends one :class:`Outgoing` and returns a :class:`RawResponse`.

Library exceptions become ``MrsDeployConnectionError`` here, once. Messages are scrubbed of query
strings, which can carry a refresh token. Every response is streamed, so a body is never read
past the connection's size limits (see :mod:`airflow_provider.api.limits`).

Every request has a total deadline (:mod:`airflow_provider.hooks.watchdog`): its answer, headers
and body, arrives within the connection's ``timeout`` (cut to the time left before a wait's
deadline, :mod:`airflow_provider.waiting.deadlines`), however slowly the server sends it. A
streamed download is long by nature: it must instead deliver each chunk within ``timeout``.
"""

from __future__ import annotations

import io
import ssl
import weakref
from collections.abc import Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import requests
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import NewConnectionError

from airflow_provider.api.calls import ApiRequest, join_url
from airflow_provider.api.errors import MrsDeployConnectionError
from airflow_provider.api.exchange import Outgoing, RawResponse
from airflow_provider.api.headers import register_case_insensitive
from airflow_provider.api.limits import BodyCollector
from airflow_provider.hooks import proxies, tls
from airflow_provider.hooks.settings import MrsDeployConnectionSettings
from airflow_provider.hooks.transport_errors import (
    Failure,
    connection_error,
    scrub,
    stalled_error,
)
from airflow_provider.hooks.watchdog import GuardedAdapter, guard_connection, guarded
from airflow_provider.waiting.deadlines import request_timeout

#: Bytes per read while loading a body into memory.
READ_CHUNK = 1 << 16

if TYPE_CHECKING:  # types of requests' stubs only
    from requests.adapters import _HostParams, _PoolKwargs

register_case_insensitive(CaseInsensitiveDict)


def new_session(settings: MrsDeployConnectionSettings) -> requests.Session:
    """A session built from the connection's transport configuration (headers, TLS, proxies
    from the environment or not), as the async session is.

    :param settings: connection settings.
    :raises MrsDeployConfigurationError: when the CA bundle cannot be used (see
        :func:`~airflow_provider.hooks.tls.verifying_context`).
    """
    config = settings.transport
    # Built only for a server spoken to over TLS: a context loads a whole CA store.
    trust = (
        tls.verifying_context(config.trust, tls.REQUESTS)
        if config.trust is not None and tls.speaks_tls(settings.base_url)
        else None
    )
    session = requests.Session()
    session.headers.update(config.headers)
    session.verify = config.trust is not None
    session.trust_env = config.trust_env
    # Authentication is the flow's (a bearer token in the headers): with no auth of its own,
    # requests would take credentials from ~/.netrc and replace that header with Basic auth.
    session.auth = _headers_as_set
    # Connections that join the sending thread's deadline guard (see the watchdog module).
    session.mount("http://", GuardedAdapter())
    session.mount("https://", TrustingAdapter(trust))
    # A proxy of the connection's own is decided here, once (a session serves one server);
    # without one, requests applies the environment's variables itself (``trust_env``).
    _PROXIES[session] = proxies.requests_proxies(config, settings.base_url)
    return session


#: ``proxies=`` of each session built by :func:`new_session` (None: requests decides).
_PROXIES: weakref.WeakKeyDictionary[requests.Session, dict[str, str | None] | None] = (
    weakref.WeakKeyDictionary()
)


def _proxies(
    session: requests.Session, settings: MrsDeployConnectionSettings
) -> dict[str, str | None] | None:
    try:
        return _PROXIES[session]
    except KeyError:  # a session built elsewhere
        return proxies.requests_proxies(settings.transport, settings.base_url)


class TrustingAdapter(GuardedAdapter):
    """A guarded adapter verifying servers with the connection's own SSL context.

    requests would verify with certifi's bundle, or with the file ``REQUESTS_CA_BUNDLE`` names
    (read at each request), and hand urllib3 a bundle path it loads per connection: not what
    the async transport trusts. This adapter hands urllib3 the context built from the
    connection's :class:`~airflow_provider.hooks.tls.CaSource` instead, and no bundle path, so
    requests' own choice of CAs is never used.

    :param context: the verifying context, or None when verification is off (then requests'
        unverified path is taken, with its ``InsecureRequestWarning``).
    """

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self._trust = context
        super().__init__()

    def build_connection_pool_key_attributes(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        cert: str | tuple[str, str] | None = None,
    ) -> tuple[_HostParams, _PoolKwargs]:
        """requests' pool key, with the connection's context in place of any CA path."""
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if self._trust is not None:
            pool.pop("ca_certs", None)
            pool.pop("ca_cert_dir", None)
            pool["ssl_context"] = self._trust
            pool["cert_reqs"] = "CERT_REQUIRED"
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """Verify with the context alone: no CA path on the pool, which urllib3 would load
        into the context (and requests would first check exists, raising a bare OSError)."""
        if self._trust is None:
            super().cert_verify(conn, url, False, cert)
            return
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None


def _headers_as_set(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """The session's authentication: the request as the call flow built it."""
    return request


def _connect_failed(error: requests.ConnectionError) -> bool:
    """True when the TCP connection was never established (the server saw nothing)."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, NewConnectionError) or isinstance(error, requests.ConnectTimeout)


def send(
    session: requests.Session, settings: MrsDeployConnectionSettings, outgoing: Outgoing
) -> RawResponse:
    """Send one request; its answer must be complete within the request's timeout.

    :param session: the hook's session (from :func:`new_session`).
    :param settings: connection settings (base URL, timeout, TLS).
    :param outgoing: what to send.
    """
    request = outgoing.request
    headers: dict[str, str] = dict(outgoing.headers)
    if outgoing.token is not None:
        headers["Authorization"] = f"Bearer {outgoing.token}"
    data: bytes | Iterable[bytes] | BinaryIO | None = None
    if outgoing.body is not None:
        data = outgoing.body.open()
        if isinstance(data, bytes):
            # Sent a block at a time, each bounded by the socket's timeout: bytes go out in one
            # ``sendall``, which the timeout bounds as a whole, so an upload that takes longer
            # than ``timeout`` over a slow link would fail whatever its pace.
            data = io.BytesIO(data)
        headers["Content-Type"] = request.content_type or "application/octet-stream"
    seconds = request_timeout(settings.timeout)
    url = join_url(settings.base_url, request)
    with guarded(seconds, restart_on_response=data is not None) as guard:
        try:
            response = session.request(
                request.method,
                url,
                params=request.params or None,
                json=request.json if data is None else None,
                data=data,
                headers=headers,
                timeout=seconds,
                verify=session.verify,
                stream=True,
                # Never: a redirect would carry the password, tokens or records elsewhere.
                allow_redirects=False,
                # None for a scheme means "no proxy" to requests (its stubs say str only).
                proxies=_proxies(session, settings),  # type: ignore[arg-type]
            )
        except requests.RequestException as err:
            raise _request_failed(err, settings, request, seconds, guard.fired) from None
        if response.status_code == proxies.PROXY_AUTHENTICATION_REQUIRED:
            response.close()
            refused = _proxy_refused(settings, request, url, "407 Proxy Authentication Required")
            if refused is not None:
                raise refused
        if request.stream and 200 <= response.status_code < 300:
            return RawResponse(response.status_code, response.headers, stream=response)
        try:
            body = _read_body(response, settings, request)
        except requests.RequestException as err:
            if guard.fired:
                raise _timed_out(settings, request, seconds) from None
            raise MrsDeployConnectionError(
                f"reading the answer from {settings.base_url} failed: {scrub(str(err))}",
                method=request.method,
                path=request.path,
            ) from None
        finally:
            guard.disarm()  # before the connection can go back to the pool
            response.close()
        if guard.fired:  # a body without a length ends where the socket was shut
            raise _timed_out(settings, request, seconds)
    return RawResponse(response.status_code, response.headers, body)


def _timed_out(
    settings: MrsDeployConnectionSettings, request: ApiRequest, seconds: float
) -> MrsDeployConnectionError:
    return connection_error(Failure.TIMEOUT, settings, request, TimeoutError(), seconds=seconds)


def _request_failed(
    err: requests.RequestException,
    settings: MrsDeployConnectionSettings,
    request: ApiRequest,
    seconds: float,
    fired: bool,
) -> MrsDeployConnectionError:
    """The provider's error for a request that got no HTTP answer."""
    if fired:
        return _timed_out(settings, request, seconds)
    if isinstance(err, requests.exceptions.ProxyError):
        refusal = "Tunnel connection failed" in str(err)
        failed = proxies.proxy_failed(
            settings.transport,
            join_url(settings.base_url, request),
            request.method,
            request.path,
            scrub(str(err)),
            retryable=not refusal,
        )
        if failed is not None:
            return failed
    if isinstance(err, requests.exceptions.SSLError):
        return connection_error(Failure.TLS, settings, request, err)
    if isinstance(err, requests.Timeout):
        sent = not isinstance(err, requests.ConnectTimeout)
        return connection_error(
            Failure.TIMEOUT, settings, request, err, may_have_been_sent=sent, seconds=seconds
        )
    if isinstance(err, requests.ConnectionError):
        sent = not _connect_failed(err)
        return connection_error(Failure.CONNECT, settings, request, err, may_have_been_sent=sent)
    return connection_error(Failure.OTHER, settings, request, err)


def _proxy_refused(
    settings: MrsDeployConnectionSettings, request: ApiRequest, url: str, detail: str
) -> MrsDeployConnectionError | None:
    return proxies.proxy_failed(
        settings.transport, url, request.method, request.path, detail, retryable=False
    )


def _read_body(
    response: requests.Response, settings: MrsDeployConnectionSettings, request: ApiRequest
) -> bytes:
    """Read a body into memory: a success up to ``max_response_bytes`` (more is an error), an
    error body up to its first :data:`~airflow_provider.api.limits.ERROR_BODY_LIMIT` bytes
    (:class:`BodyCollector`)."""
    collector = BodyCollector.for_request(
        response.status_code, response.headers, settings.max_response_bytes, request
    )
    for chunk in response.iter_content(READ_CHUNK):
        if collector.add(chunk):
            break
    return collector.body()


def iter_stream(
    raw: RawResponse, chunk_size: int, method: str, path: str, *, stall_timeout: float
) -> Generator[bytes, None, None]:
    """Yield the body of a streamed response in chunks, closing the response in every case.

    :param raw: a successful streamed response from :func:`send`.
    :param chunk_size: bytes per chunk (at most).
    :param method: request method, for error messages.
    :param path: request path, for error messages.
    :param stall_timeout: seconds each chunk (or the end of the body) may take to arrive.
    :raises MrsDeployConnectionError: when the connection breaks or stalls before the body is
        complete.
    """
    response: requests.Response = raw.stream
    with response:
        pieces = response.iter_content(chunk_size)
        pending = bytearray()
        ended = False
        while not ended:
            guard = guard_connection(response.raw.connection, stall_timeout)
            try:
                ended = _fill(pieces, pending, chunk_size)
            except requests.RequestException as err:
                if guard.fired:
                    raise stalled_error(stall_timeout, chunk_size, method, path) from None
                raise MrsDeployConnectionError(
                    f"download interrupted: {scrub(str(err))}", method=method, path=path
                ) from None
            finally:
                guard.disarm()
            if guard.fired:  # the socket was shut: what came may be cut short
                raise stalled_error(stall_timeout, chunk_size, method, path)
            while len(pending) >= chunk_size or (ended and pending):
                chunk = bytes(pending[:chunk_size])
                del pending[:chunk_size]
                yield chunk


def _fill(pieces: Iterator[bytes], pending: bytearray, chunk_size: int) -> bool:
    """Read pieces into ``pending`` until it holds a whole chunk; True when the body ended.

    Pieces are gathered into whole chunks so that a server dripping tiny pieces cannot keep a
    download alive at a few bytes per timeout: each chunk must arrive within the stall timeout.
    """
    while len(pending) < chunk_size:
        piece = next(pieces, None)
        if piece is None:
            return True
        pending += piece
    return False
