"""Async transport (aiohttp): sends one :class:`Outgoing` without blocking the event loop.

As on the blocking path, a request's whole answer, headers and body, must arrive within the
connection's ``timeout`` (cut to the time left before a wait's deadline), and a streamed download
must deliver each chunk within it.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from airflow_provider.api.calls import ApiRequest, join_url
from airflow_provider.api.errors import MrsDeployConnectionError
from airflow_provider.api.exchange import Outgoing, RawResponse
from airflow_provider.api.headers import register_case_insensitive
from airflow_provider.api.limits import BodyCollector
from airflow_provider.hooks import proxies, tls
from airflow_provider.hooks.coarse_timeout import coarse_timeout
from airflow_provider.hooks.settings import MrsDeployConnectionSettings
from airflow_provider.hooks.transport_errors import (
    Failure,
    connection_error,
    scrub,
    stalled_error,
)
from airflow_provider.hooks.transport_sync import READ_CHUNK
from airflow_provider.waiting.deadlines import request_timeout

#: Connections one session keeps open to the server at most (aiohttp's default). A session
#: is shared by every hook of a connection in an event loop (see ``async_sessions``), so this
#: bounds what a triggerer with many waits opens; further requests queue for a free connection.
CONNECTION_LIMIT = 100

register_case_insensitive(CIMultiDictProxy, CIMultiDict)


async def tls_option(settings: MrsDeployConnectionSettings) -> ssl.SSLContext | bool:
    """What the connector is given as ``ssl``: False when verification is off, else the context
    the blocking transport verifies with too (built from the same source, :mod:`~.tls`), never
    aiohttp's own default, which trusts other CAs than requests does.

    The context is built in a worker thread: reading certificate files must not block the loop.

    :param settings: connection settings.
    :raises MrsDeployConfigurationError: when the CA bundle cannot be used, as on the blocking
        transport.
    """
    source = settings.transport.trust
    if source is None:
        return False
    if not tls.speaks_tls(settings.base_url):
        # No handshake with the server: loading a CA store (a thread hop and tens of ms of
        # CPU per process) would be wasted. aiohttp's default stays for anything else.
        return True
    return await asyncio.to_thread(tls.verifying_context, source, tls.AIOHTTP)


class _Informational(Exception):
    """An informational (``1xx``) answer, carried out of aiohttp to become the exchange's answer.

    Internal: :func:`send` always catches it.
    """

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__(f"informational answer {status}")
        self.status = status
        self.headers = headers


class _StopAtInformational(aiohttp.ClientResponse):
    """aiohttp's response, except that it hands over an informational (``1xx``) answer other
    than ``100 Continue`` instead of waiting past it for a final one.

    The blocking transport (``http.client``) skips a ``100`` and takes any other ``1xx`` as the
    final answer; aiohttp skips every ``1xx`` but ``101`` and waits for another answer, which a
    misbehaving server or proxy may never send. The same answer would then be an error at once
    on one path and a timeout, retried, on the other. Handing the status over lets the call flow
    (``api.auth_flow``) refuse it identically on both.

    aiohttp reads each answer's head with the connection protocol's ``read()`` (3.x); it is
    wrapped for this response only, and the connection, whose socket may still hold the rest of
    the exchange, is closed by aiohttp when :meth:`start` fails.
    """

    async def start(self, connection: aiohttp.connector.Connection) -> aiohttp.ClientResponse:
        protocol = connection.protocol
        if protocol is None:  # pragma: no cover - aiohttp starts on an open connection
            return await super().start(connection)
        read = protocol.read

        async def read_stopping_at_informational() -> Any:
            message, payload = await read()
            if 100 < message.code < 200:
                raise _Informational(message.code, dict(message.headers))
            return message, payload

        protocol.read = read_stopping_at_informational  # type: ignore[method-assign]
        try:
            return await super().start(connection)
        finally:
            del protocol.read  # the class's method again, for the connection's next answer


def build_session(
    settings: MrsDeployConnectionSettings,
    tls: ssl.SSLContext | bool,
    *,
    limit: int = CONNECTION_LIMIT,
) -> aiohttp.ClientSession:
    """A client session bound to the running loop, without awaiting anything.

    :param settings: connection settings (the timeout of each request).
    :param tls: from :func:`tls_option`.
    :param limit: connections kept open at most.
    """
    config = settings.transport
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=tls, limit=limit),
        headers=config.headers,
        timeout=aiohttp.ClientTimeout(total=config.timeout),
        # The proxy (the connection's own, or the environment's) is decided here, once (a
        # session serves one server: see async_sessions.SessionKey), by the blocking session's
        # rules (hooks.proxies.route), instead of by aiohttp in a worker thread per request.
        trust_env=False,
        response_class=_StopAtInformational,
    )
    # aiohttp resends an idempotent request once, without a word, when a kept-alive connection
    # drops; the retry rules already resend it (logged, counted, with backoff), so a server
    # dropping every answer would get twice ``max_retries + 1`` requests on this path and the
    # configured number on the blocking one. The switch has no public name (aiohttp 3.12-3.14
    # keep it as this attribute); without it, the resend stays, bounded by the same timeout.
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
    _PROXIES[session] = proxies.route(config, settings.base_url)
    return session


#: The proxy of each session built by :func:`build_session` (None: straight to the server).
_PROXIES: weakref.WeakKeyDictionary[aiohttp.ClientSession, str | None] = weakref.WeakKeyDictionary()


def _proxy(session: aiohttp.ClientSession, settings: MrsDeployConnectionSettings, url: str) -> Any:
    """The session's proxy; decided now for a session built elsewhere."""
    try:
        return _PROXIES[session]
    except KeyError:
        return proxies.route(settings.transport, url)


async def send(
    session: aiohttp.ClientSession, settings: MrsDeployConnectionSettings, outgoing: Outgoing
) -> RawResponse:
    """Send one request (JSON bodies only; uploads go through the blocking transport).

    A successful streamed request (``request.stream``) comes back unread, in ``stream``; read
    it with :func:`aiter_stream`.

    :param session: the hook's client session.
    :param settings: connection settings.
    :param outgoing: what to send.
    """
    request = outgoing.request
    if outgoing.body is not None:
        raise NotImplementedError("raw request bodies are only sent by the blocking transport")
    headers: dict[str, str] = dict(outgoing.headers)
    if outgoing.token is not None:
        headers["Authorization"] = f"Bearer {outgoing.token}"
    seconds = request_timeout(settings.timeout)
    url = join_url(settings.base_url, request)
    response: aiohttp.ClientResponse | None = None
    try:
        # The whole exchange, not each read: a server dripping bytes cannot stretch it.
        async with coarse_timeout(seconds):
            try:
                response = await session.request(
                    request.method,
                    _wire_url(url, settings.base_url, request.path),
                    proxy=_proxy(session, settings, url),
                    params=request.params or None,
                    json=request.json,
                    headers=headers,
                    timeout=_connect_timeout(seconds),
                    # Never: a redirect would carry the password, tokens or records elsewhere.
                    allow_redirects=False,
                )
            except _Informational as informational:
                # A 1xx has no body; the call flow refuses it (as on the blocking path).
                return RawResponse(informational.status, informational.headers, b"")
            if request.stream and 200 <= response.status < 300:
                return RawResponse(response.status, response.headers, stream=response)
            if response.status == proxies.PROXY_AUTHENTICATION_REQUIRED:
                refused = _proxy_error(settings, request, url, "407 Proxy Authentication Required")
                if refused is not None:
                    raise refused
            body = await _read_body(response, settings, request)
    except BaseException as err:
        if response is not None:
            response.close()  # never back to the pool half read
        raise _request_failed(err, settings, request, seconds, url) from None
    response.release()
    return RawResponse(response.status, dict(response.headers), body)


def _wire_url(url: str, base_url: str, path: str) -> URL | str:
    """What aiohttp is given for ``url`` (``base_url`` joined with a request's ``path``).

    yarl parses and re-quotes every URL given as a string (about 5 µs of a 70 µs download on
    loopback). A request path is quoted by ``api.calls``: with no escape in it, it holds only
    characters yarl keeps as they are, so when the base URL is also in the form yarl would write
    it, the URL is passed as already encoded and is sent byte for byte as before. Anything else
    (an escape, which yarl may normalise, such as ``%28`` to ``(``; a space or a non-ASCII host
    in the base URL) is left to yarl.
    """
    if "%" in path or not _written_as_yarl_would(base_url):
        return url
    return URL(url, encoded=True)


@functools.lru_cache(maxsize=64)
def _written_as_yarl_would(base_url: str) -> bool:
    base = base_url.rstrip("/")
    return str(URL(base)) == base


@functools.lru_cache(maxsize=64)
def _connect_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """aiohttp's timeout of one request's connect phase (immutable, so built once per value:
    without a deadline every request of a connection asks for the same one)."""
    return aiohttp.ClientTimeout(total=None, sock_connect=seconds)


def _proxy_error(
    settings: MrsDeployConnectionSettings,
    request: ApiRequest,
    url: str,
    detail: str,
    *,
    retryable: bool = False,
) -> MrsDeployConnectionError | None:
    return proxies.proxy_failed(
        settings.transport, url, request.method, request.path, detail, retryable=retryable
    )


def _request_failed(
    err: BaseException,
    settings: MrsDeployConnectionSettings,
    request: ApiRequest,
    seconds: float,
    url: str,
) -> BaseException:
    """The provider's error for an exchange that failed (other exceptions pass unchanged)."""
    if isinstance(err, MrsDeployConnectionError):
        return err
    if isinstance(err, aiohttp.ClientHttpProxyError):  # the proxy refused the tunnel
        detail = f"Tunnel connection failed: {err.status} {scrub(err.message)}"
        return _proxy_error(settings, request, url, detail) or err
    if isinstance(err, aiohttp.ClientProxyConnectionError):
        detail = scrub(str(err))
        return _proxy_error(settings, request, url, detail, retryable=True) or err
    if isinstance(err, (aiohttp.ClientSSLError, ssl.SSLError)):
        return connection_error(Failure.TLS, settings, request, err)
    if isinstance(err, asyncio.TimeoutError):
        return connection_error(Failure.TIMEOUT, settings, request, err, seconds=seconds)
    if isinstance(err, aiohttp.ClientConnectorError):
        return connection_error(Failure.CONNECT, settings, request, err, may_have_been_sent=False)
    if isinstance(err, aiohttp.ClientError):
        return connection_error(Failure.OTHER, settings, request, err)
    return err


def aiter_stream(
    raw: RawResponse, chunk_size: int, method: str, path: str, *, stall_timeout: float
) -> AsyncIterator[bytes]:
    """The body of a streamed response in chunks; the connection goes back to the pool when the
    body was read to the end, and is closed otherwise.

    :param raw: a successful streamed response from :func:`send`.
    :param chunk_size: bytes per chunk (fewer only at the end).
    :param method: request method, for error messages.
    :param path: request path, for error messages.
    :param stall_timeout: seconds each chunk (or the end of the body) may take to arrive.
    :raises MrsDeployConnectionError: (from the iterator) when the connection breaks or stalls
        before the body is complete.
    """
    return StreamedBody(raw.stream, chunk_size, method, path, stall_timeout)


class StreamedBody:
    """The iterator of :func:`aiter_stream`.

    A class, not an async generator: asyncio registers every async generator when it first
    runs and finalizes it when it ends, which costs more than reading a small file that has
    already arrived (a collect reads thousands of them).
    """

    __slots__ = ("_chunk_size", "_method", "_over", "_path", "_response", "_stall_timeout")

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        chunk_size: int,
        method: str,
        path: str,
        stall_timeout: float,
    ) -> None:
        self._response = response
        self._chunk_size = chunk_size
        self._method = method
        self._path = path
        self._stall_timeout = stall_timeout
        self._over = False

    def __aiter__(self) -> StreamedBody:
        return self

    async def __anext__(self) -> bytes:
        if self._over:
            raise StopAsyncIteration
        response = self._response
        content = response.content
        try:
            if content.is_eof():
                # The whole body has arrived (a small file usually has, with its headers): the
                # rest is in memory and cannot stall, so no timer is armed for it.
                chunk = _buffered_chunk(content, self._chunk_size)
            else:
                async with coarse_timeout(self._stall_timeout):
                    chunk = await _read_chunk(content, self._chunk_size)
        except TimeoutError:
            self._end(close=True)
            raise stalled_error(
                self._stall_timeout, self._chunk_size, self._method, self._path
            ) from None
        except aiohttp.ClientError as err:
            self._end(close=True)
            raise MrsDeployConnectionError(
                f"download interrupted: {scrub(str(err)) or type(err).__name__}",
                method=self._method,
                path=self._path,
            ) from None
        except BaseException:
            self._end(close=True)  # cancelled mid-read: never back to the pool half read
            raise
        if not chunk:
            self._end(close=False)
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        """Stop early: the response is closed (its connection is not reused half read)."""
        self._end(close=True)

    def _end(self, *, close: bool) -> None:
        if self._over:
            return
        self._over = True
        if close:
            self._response.close()
        else:
            self._response.release()


def _buffered_chunk(content: aiohttp.StreamReader, chunk_size: int) -> bytes:
    """The next ``chunk_size`` bytes of a body that has wholly arrived (fewer only at the end;
    empty when it is over): :func:`_read_chunk` without waiting.

    :raises aiohttp.ClientError: the error that ended the body, if one did.
    """
    first = content.read_nowait(chunk_size)
    if len(first) == chunk_size or not first:
        return first
    block = bytearray(first)
    while len(block) < chunk_size:
        piece = content.read_nowait(chunk_size - len(block))
        if not piece:
            break
        block += piece
    return bytes(block)


async def _read_chunk(content: aiohttp.StreamReader, chunk_size: int) -> bytes:
    """The next ``chunk_size`` bytes (fewer only at the end; empty when the body is over).

    Pieces are gathered into whole chunks so that a server dripping tiny pieces cannot keep a
    download alive at a few bytes per timeout.
    """
    first = await content.read(chunk_size)
    if len(first) == chunk_size or not first:
        return first
    block = bytearray(first)
    while len(block) < chunk_size:
        piece = await content.read(chunk_size - len(block))
        if not piece:
            break
        block += piece
    return bytes(block)


async def _read_body(
    response: aiohttp.ClientResponse, settings: MrsDeployConnectionSettings, request: ApiRequest
) -> bytes:
    """Read a body into memory within the size limits (:class:`BodyCollector`).

    A small answer (a poll, a listing) has usually arrived whole with its headers: it is then
    taken from memory in the same chunks, without an awaited read per chunk (a triggerer
    polling a thousand batches reads a hundred such answers a second).
    """
    collector = BodyCollector.for_request(
        response.status, response.headers, settings.max_response_bytes, request
    )
    content = response.content
    if content.is_eof():
        while chunk := _buffered_chunk(content, READ_CHUNK):
            if collector.add(chunk):
                break
    else:
        async for chunk in content.iter_chunked(READ_CHUNK):
            if collector.add(chunk):
                break
    return collector.body()
