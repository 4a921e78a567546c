"""Blocking transport (requests): sends one :class:`Outgoing` and returns a :class:`RawResponse`.

Library exceptions become ``MrsDeployConnectionError`` here, once. Messages are scrubbed of query
strings, which can carry a refresh token. Every response is streamed, so a body is never read
past the connection's size limits (see :mod:`airflow_provider.hooks.limits`).
"""

from __future__ import annotations

from collections.abc import Generator

import requests
from urllib3.exceptions import NewConnectionError

from airflow_provider.api.calls import ApiRequest, join_url
from airflow_provider.api.errors import MrsDeployConnectionError
from airflow_provider.hooks.flow import Outgoing, RawResponse
from airflow_provider.hooks.limits import BodyCollector
from airflow_provider.hooks.settings import MrsDeployConnectionSettings
from airflow_provider.hooks.transport_errors import Failure, connection_error, scrub

#: Bytes per read while loading a body into memory.
READ_CHUNK = 1 << 16

ACCEPT_JSON = {"Accept": "application/json"}


def new_session(settings: MrsDeployConnectionSettings) -> requests.Session:
    """A session with the provider's defaults (``Accept: application/json``, TLS setting).

    :param settings: connection settings.
    """
    session = requests.Session()
    session.headers.update(ACCEPT_JSON)
    session.verify = settings.verify
    return session


def _connect_failed(error: requests.ConnectionError) -> bool:
    """True when the TCP connection was never established (the server saw nothing)."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, NewConnectionError) or isinstance(error, requests.ConnectTimeout)


def send(
    session: requests.Session, settings: MrsDeployConnectionSettings, outgoing: Outgoing
) -> RawResponse:
    """Send one request.

    :param session: the hook's session.
    :param settings: connection settings (base URL, timeout, TLS).
    :param outgoing: what to send.
    """
    request = outgoing.request
    headers: dict[str, str] = dict(outgoing.headers)
    if outgoing.token is not None:
        headers["Authorization"] = f"Bearer {outgoing.token}"
    data = None
    if outgoing.body is not None:
        data = outgoing.body.open()
        headers["Content-Type"] = request.content_type or "application/octet-stream"
    try:
        response = session.request(
            request.method,
            join_url(settings.base_url, request),
            params=request.params or None,
            json=request.json if data is None else None,
            data=data,
            headers=headers,
            timeout=settings.timeout,
            verify=settings.verify,
            stream=True,
            # Never: a redirect would carry the password, tokens or records elsewhere.
            allow_redirects=False,
        )
    except requests.exceptions.SSLError as err:
        raise connection_error(Failure.TLS, settings, request, err) from None
    except requests.Timeout as err:
        sent = not isinstance(err, requests.ConnectTimeout)
        raise connection_error(
            Failure.TIMEOUT, settings, request, err, may_have_been_sent=sent
        ) from None
    except requests.ConnectionError as err:
        sent = not _connect_failed(err)
        raise connection_error(
            Failure.CONNECT, settings, request, err, may_have_been_sent=sent
        ) from None
    except requests.RequestException as err:
        raise connection_error(Failure.OTHER, settings, request, err) from None
    if request.stream and 200 <= response.status_code < 300:
        return RawResponse(response.status_code, response.headers, stream=response)
    try:
        body = _read_body(response, settings, request)
    except requests.RequestException as err:
        raise MrsDeployConnectionError(
            f"reading the answer from {settings.base_url} failed: {scrub(str(err))}",
            method=request.method,
            path=request.path,
        ) from None
    finally:
        response.close()
    return RawResponse(response.status_code, response.headers, body)


def _read_body(
    response: requests.Response, settings: MrsDeployConnectionSettings, request: ApiRequest
) -> bytes:
    """Read a body into memory: a success up to ``max_response_bytes`` (more is an error), an
    error body up to its first :data:`~airflow_provider.hooks.limits.ERROR_BODY_LIMIT` bytes
    (:class:`BodyCollector`)."""
    collector = BodyCollector.for_request(
        response.status_code, response.headers, settings.max_response_bytes, request
    )
    for chunk in response.iter_content(READ_CHUNK):
        if collector.add(chunk):
            break
    return collector.body()


def iter_stream(
    raw: RawResponse, chunk_size: int, method: str, path: str
) -> Generator[bytes, None, None]:
    """Yield the body of a streamed response in chunks, closing the response in every case.

    :param raw: a successful streamed response from :func:`send`.
    :param chunk_size: bytes per chunk (at most).
    :param method: request method, for error messages.
    :param path: request path, for error messages.
    :raises MrsDeployConnectionError: when the connection breaks before the body is complete.
    """
    response: requests.Response = raw.stream
    with response:
        try:
            for chunk in response.iter_content(chunk_size):
                if chunk:
                    yield chunk
        except requests.RequestException as err:
            raise MrsDeployConnectionError(
                f"download interrupted: {scrub(str(err))}", method=method, path=path
            ) from None
