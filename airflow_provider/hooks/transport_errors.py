"""One wording for "no HTTP response", whichever HTTP library the transport uses.

Each transport only decides which kind of failure its library raised; the message, the
scrubbing of query strings and the retry flags are built here, so the sync and async paths can
never describe the same failure differently.
"""

from __future__ import annotations

import re
from enum import Enum

from airflow_provider.api.calls import ApiRequest
from airflow_provider.api.errors import MrsDeployConnectionError
from airflow_provider.hooks.settings import MrsDeployConnectionSettings
from airflow_provider.safe_text import printable

_QUERY = re.compile(r"\?[^\s'\")]*")

#: OpenSSL's reasons for a first answer that is no TLS record at all, as when a server
#: answering plain HTTP (often a "400 Bad Request" page) is read as TLS. OpenSSL 3.0 says
#: WRONG_VERSION_NUMBER, 3.2 and later RECORD_LAYER_FAILURE or PACKET_LENGTH_TOO_LONG; others
#: UNKNOWN_PROTOCOL or HTTP_REQUEST.
_PLAIN_HTTP = re.compile(
    r"wrong[ _]version[ _]number|record[ _]layer[ _]failure|packet[ _]length[ _]too[ _]long"
    r"|unknown[ _]protocol|http_request",
    re.IGNORECASE,
)


def speaks_plain_http(text: str) -> bool:
    """Whether a TLS failure's text says the server answered without TLS.

    :param text: the TLS library's message.
    """
    return _PLAIN_HTTP.search(text) is not None


def scrub(text: str) -> str:
    """Remove query strings (which may hold tokens) from an exception text, and escape the
    control characters a server may have put in it.

    :param text: the text.
    """
    return printable(_QUERY.sub("?...", text))


class Failure(str, Enum):
    """Why a request got no HTTP response."""

    TLS = "tls"
    TIMEOUT = "timeout"
    CONNECT = "connect"
    OTHER = "other"


def connection_error(
    failure: Failure,
    settings: MrsDeployConnectionSettings,
    request: ApiRequest,
    detail: BaseException,
    *,
    may_have_been_sent: bool = True,
    seconds: float | None = None,
) -> MrsDeployConnectionError:
    """The provider's error for a request that got no (complete) HTTP response.

    :param failure: the kind of failure the transport recognised.
    :param settings: connection settings (base URL, timeout).
    :param request: the request that failed.
    :param detail: the library's exception, quoted without query strings.
    :param may_have_been_sent: False only when no connection was established.
    :param seconds: the time the request was given (the connection's ``timeout`` by default;
        less near a wait's deadline).
    """
    url, text = settings.base_url, scrub(str(detail))
    if failure is Failure.TLS and speaks_plain_http(text):
        plain = "http://" + url.removeprefix("https://")
        message = (
            f"TLS error talking to {url}: {text}; the server seems to speak plain HTTP on "
            f"this port, not HTTPS. Set the connection's scheme to http (host {plain}, or "
            "the 'scheme' extra), or use the port of the server's HTTPS listener"
        )
    elif failure is Failure.TLS:
        message = (
            f"TLS error talking to {url}: {text}; check the connection's 'verify' / "
            "'ca_bundle' extras"
        )
    elif failure is Failure.TIMEOUT:
        allowed = settings.timeout if seconds is None else seconds
        message = f"no complete answer from {url} within {allowed:g} s"
    elif failure is Failure.CONNECT:
        message = f"connection to {url} failed: {text}"
    else:
        message = f"request to {url} failed: {text}"
    return MrsDeployConnectionError(
        message,
        method=request.method,
        path=request.path,
        retryable=failure is not Failure.TLS,
        may_have_been_sent=may_have_been_sent,
    )


def stalled_error(
    seconds: float, chunk_size: int, method: str, path: str
) -> MrsDeployConnectionError:
    """The error for a download whose next chunk did not arrive in time (retryable: the
    download resumes where it stopped).

    :param seconds: the time each chunk may take (the connection's ``timeout``).
    :param chunk_size: bytes per chunk.
    :param method: request method.
    :param path: request path.
    """
    return MrsDeployConnectionError(
        f"download stalled: fewer than {chunk_size} bytes arrived in {seconds:g} s",
        method=method,
        path=path,
    )
