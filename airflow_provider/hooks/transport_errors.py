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

_QUERY = re.compile(r"\?[^\s'\")]*")


def scrub(text: str) -> str:
    """Remove query strings (which may hold tokens) from an exception text.

    :param text: the text.
    """
    return _QUERY.sub("?...", text)


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
) -> MrsDeployConnectionError:
    """The provider's error for a request that got no HTTP response.

    :param failure: the kind of failure the transport recognised.
    :param settings: connection settings (base URL, timeout).
    :param request: the request that failed.
    :param detail: the library's exception, quoted without query strings.
    :param may_have_been_sent: False only when no connection was established.
    """
    url, text = settings.base_url, scrub(str(detail))
    if failure is Failure.TLS:
        message = (
            f"TLS error talking to {url}: {text}; check the connection's 'verify' / "
            "'ca_bundle' extras"
        )
    elif failure is Failure.TIMEOUT:
        message = f"no answer from {url} within {settings.timeout:g} s"
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
