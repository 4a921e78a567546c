"""Exception hierarchy of the provider and the pure mapping from an HTTP error response to it.

Every failure the provider reports is a :class:`MrsDeployError`. It is a plain ``Exception``,
not an ``AirflowException``: any exception fails a task, and the wire protocol must not depend
on Airflow. Errors that come from a server response are :class:`MrsDeployApiError` subclasses
chosen by HTTP status, so callers branch on the class (or on ``status_code``), never on the text
of a message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from airflow_provider.api.headers import header_value
from airflow_provider.safe_text import printable

#: How much of the server's error text is kept as the message.
MAX_MESSAGE_CHARS = 500
#: Ends a server message that was cut at :data:`MAX_MESSAGE_CHARS`. Every cut is marked, so a
#: reader that removes secrets (the batch status page) knows where a secret may have been cut
#: in two, leaving only its start.
CUT_MARK = "..."


class MrsDeployError(Exception):
    """Base class of every error raised by the provider."""


class MrsDeployConfigurationError(MrsDeployError, ValueError):
    """The connection or an argument is incomplete or invalid (nothing was sent)."""


class MrsDeployProtocolError(MrsDeployError):
    """The server answered something that does not follow the wire contract."""


class MrsDeployResponseTooLargeError(MrsDeployProtocolError):
    """The server sent (or announced) more bytes than the connection's limit allows.

    Not retried: the same request would get the same answer.

    :param message: what was too large and which extra raises the limit.
    :param limit: the limit in bytes.
    """

    def __init__(self, message: str, *, limit: int):
        super().__init__(message)
        self.limit = limit


class MrsDeployConnectionError(MrsDeployError):
    """The request did not get an HTTP response: connection refused or reset, DNS, TLS, timeout.

    :param message: what went wrong, without credentials.
    :param method: HTTP method of the request.
    :param path: path of the request, relative to the server base URL.
    :param retryable: False for failures that will not go away by waiting (TLS verification).
    :param may_have_been_sent: False only when the connection was never established, so the
        server cannot have acted on the request.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        retryable: bool = True,
        may_have_been_sent: bool = True,
    ):
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.retryable = retryable
        self.may_have_been_sent = may_have_been_sent

    def __str__(self) -> str:
        if self.method and self.path:
            return f"{self.method} {self.path} -> {self.message}"
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        attrs = {
            "method": self.method,
            "path": self.path,
            "retryable": self.retryable,
            "may_have_been_sent": self.may_have_been_sent,
        }
        return (_rebuild, (type(self), self.message, attrs))


class MrsDeployApiError(MrsDeployError):
    """The server answered with an HTTP error status.

    :param message: the server's message (``message`` of the error body) or a short body excerpt.
    :param status_code: HTTP status code.
    :param method: HTTP method of the request.
    :param path: path of the request, relative to the server base URL.
    :param exception_type: the server's ``exceptionType``, when it sent one.
    :param retry_after: seconds the server asked the client to wait (``Retry-After``), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        method: str | None = None,
        path: str | None = None,
        exception_type: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.method = method
        self.path = path
        self.exception_type = exception_type
        self.retry_after = retry_after

    def __str__(self) -> str:
        request = " ".join(part for part in (self.method, self.path) if part)
        status = "error" if self.status_code is None else str(self.status_code)
        prefix = f"{request} -> {status}" if request else status
        return f"{prefix}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only attributes do not survive the default Exception pickling.
        attrs = {
            "status_code": self.status_code,
            "method": self.method,
            "path": self.path,
            "exception_type": self.exception_type,
            "retry_after": self.retry_after,
        }
        return (_rebuild, (type(self), self.message, attrs))


class MrsDeployRedirectError(MrsDeployApiError):
    """A 3xx answer. Redirects are never followed: credentials and records stay with the
    configured address."""


def redirect_error(
    status_code: int, location: str | None, method: str, path: str, base_url: str
) -> MrsDeployRedirectError:
    """The error for a redirect, naming where it pointed and what to fix.

    :param location: the ``Location`` header (server text: control characters are escaped).
    """
    shown = "no Location" if not location else repr(location[:200])
    return MrsDeployRedirectError(
        f"the server redirected to {shown}; redirects are never followed, so the login, tokens "
        f"and records are never sent to another address. Point the connection at the address "
        f"the server means (now {base_url}): check the scheme (http or https), the port and "
        "any path prefix",
        status_code=status_code,
        method=method,
        path=path,
    )


class MrsDeployAuthError(MrsDeployApiError):
    """401 or 403: the credentials were refused or lack permission."""


class MrsDeployNotFoundError(MrsDeployApiError):
    """404 (or an empty answer where one object was expected)."""


class MrsDeployBadRequestError(MrsDeployApiError):
    """400, 413 and other 4xx the client must not retry: the request itself is wrong."""


class MrsDeployTransientError(MrsDeployApiError):
    """408, 429, 502, 503, 504: worth retrying, after ``retry_after`` when given."""


class MrsDeployServerError(MrsDeployApiError):
    """500 and other 5xx: retried a bounded number of times."""


class MrsDeployIndexError(MrsDeployError, IndexError):
    """A row index outside the batch."""


TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})
AUTH_STATUSES = frozenset({401, 403})


def _rebuild(cls: type[Exception], message: str, attrs: dict[str, Any]) -> Exception:
    return cls(message, **attrs)


def error_class_for_status(status_code: int) -> type[MrsDeployApiError]:
    """Return the exception class for an HTTP error status.

    :param status_code: HTTP status code (>= 400).
    """
    if status_code in AUTH_STATUSES:
        return MrsDeployAuthError
    if status_code == 404:
        return MrsDeployNotFoundError
    if status_code in TRANSIENT_STATUSES:
        return MrsDeployTransientError
    if 400 <= status_code < 500:
        return MrsDeployBadRequestError
    if status_code >= 500:
        return MrsDeployServerError
    return MrsDeployApiError


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header value into seconds from ``now``.

    Both forms are accepted: delta seconds (``"2"``, ``"1.5"``) and an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``). A date in the past gives 0; garbage gives None.

    :param value: the header value, or None when absent.
    :param now: current epoch seconds (defaults to the wall clock); only used for dates.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            return None
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _cut(text: str) -> str:
    """``text`` cut to :data:`MAX_MESSAGE_CHARS`, the cut marked with :data:`CUT_MARK`."""
    if len(text) > MAX_MESSAGE_CHARS:
        return text[:MAX_MESSAGE_CHARS] + CUT_MARK
    return text


def _body_text(body: bytes) -> str:
    return _cut(body.decode("utf-8", errors="replace").strip())


def _message_and_type(body: bytes) -> tuple[str | None, str | None]:
    """Read ``message``/``Message`` and ``exceptionType`` from a JSON error body, if it is one."""
    try:
        obj = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if isinstance(obj, str):
        return _cut(obj) or None, None
    if not isinstance(obj, dict):
        return None, None
    lowered = {str(key).lower(): value for key, value in obj.items()}
    message = lowered.get("message")
    if message is None:
        message = lowered.get("detail") if isinstance(lowered.get("detail"), str) else None
    exception_type = lowered.get("exceptiontype")
    return (
        _cut(str(message)) if message is not None else None,
        str(exception_type) if exception_type is not None else None,
    )


def error_from_response(
    status_code: int,
    body: bytes,
    method: str | None,
    path: str | None,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
) -> MrsDeployApiError:
    """Build the exception for an HTTP error response.

    :param status_code: HTTP status code.
    :param body: raw response body.
    :param method: HTTP method of the request.
    :param path: request path relative to the base URL (never the query: it can hold tokens).
    :param headers: response headers (any case).
    :param now: current epoch seconds, for ``Retry-After`` dates (defaults to the wall clock).
    """
    message, exception_type = _message_and_type(body)
    if message is None:
        message = _body_text(body) or f"HTTP {status_code} with an empty body"
    cls = error_class_for_status(status_code)
    return cls(
        # Server text, printed in task logs: no line breaks or escapes reach the log as such.
        printable(message),
        status_code=status_code,
        method=method,
        path=path,
        exception_type=None if exception_type is None else printable(exception_type),
        retry_after=parse_retry_after(header_value(headers, "Retry-After"), now),
    )
