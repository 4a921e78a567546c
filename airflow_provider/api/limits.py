"""Size limits on what a server sends, so a misbehaving one cannot exhaust a worker's memory.

Bodies read into memory (JSON answers, a file fetched whole) stop at the connection's
``max_response_bytes``; files streamed to storage stop at ``max_download_bytes``. Both are
checked against ``Content-Length`` before reading and counted while reading (a chunked or lying
server is caught too, and compressed bodies count after decompression). Error bodies are only
needed for their message, so at most :data:`ERROR_BODY_LIMIT` bytes of them are read.

Decisions only: the transports read the chunks and hand each one over, and stop reading when
told to.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

from airflow_provider.api.calls import ApiRequest, Expect
from airflow_provider.api.errors import MrsDeployResponseTooLargeError
from airflow_provider.api.headers import header_value
from airflow_provider.api.models import BatchStatus
from airflow_provider.api.parsers import HeadScan, scan_batch_progress

#: Bytes of an error body kept for its message; the rest is not read.
ERROR_BODY_LIMIT = 64 * 1024
#: A batch status is scanned for its state and counts once this much of it has come: a
#: smaller answer (any batch still running) is read whole, which costs less than scanning.
PROGRESS_SCAN_FROM = 32 * 1024
#: Bytes of a batch status scanned for its state and counts at most; an answer that has not
#: shown them by then is read whole.
PROGRESS_HEAD_BYTES = 256 * 1024


def too_large(what: str, limit: int, extra: str) -> MrsDeployResponseTooLargeError:
    """The error for a body over ``limit``.

    :param what: the request (``GET /path``) or file being read.
    :param limit: the limit in bytes.
    :param extra: the connection extra that sets the limit.
    """
    return MrsDeployResponseTooLargeError(
        f"{what}: the server sent more than {limit} bytes, the connection's {extra!r} limit; "
        f"the server may be misbehaving (endless or oversized body), or raise {extra!r} in the "
        "connection extras if the answer is legitimately this large",
        limit=limit,
    )


def announced_length(headers: Mapping[str, str]) -> int | None:
    """``Content-Length`` as an integer, or None when absent or not a number.

    :param headers: response headers (any case).
    """
    value = header_value(headers, "Content-Length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


def check_announced(headers: Mapping[str, str], limit: int | None, what: str, extra: str) -> None:
    """Fail before reading when the announced length is already over ``limit``.

    :param headers: response headers.
    :param limit: the limit in bytes, or None for none.
    :param what: the request or file, for the message.
    :param extra: the connection extra that sets the limit.
    """
    length = announced_length(headers)
    if limit is not None and length is not None and length > limit:
        raise too_large(what, limit, extra)


class ByteBudget:
    """Counts bytes read and fails as soon as the total passes the limit.

    :param limit: the limit in bytes, or None for none.
    :param what: the request or file, for the message.
    :param extra: the connection extra that sets the limit.
    """

    def __init__(self, limit: int | None, what: str, extra: str):
        self.limit = limit
        self.what = what
        self.extra = extra
        self.used = 0

    def take(self, size: int) -> None:
        """Account for ``size`` more bytes.

        :param size: bytes just read.
        :raises MrsDeployResponseTooLargeError: when the total passes the limit.
        """
        self.used += size
        if self.limit is not None and self.used > self.limit:
            raise too_large(self.what, self.limit, self.extra)


class BodyCollector:
    """Collects one response body as both transports read it, within the limits.

    A success is kept whole up to ``limit`` (announced larger, or growing past it, is an error);
    an error body is kept up to :data:`ERROR_BODY_LIMIT` and the rest is not wanted, as only its
    message matters. A batch status read for its progress (``expect="progress"``) is wanted only
    until its state and counts are known (:func:`scan_batch_progress`), however large the rest.

    :param status: HTTP status of the response.
    :param headers: response headers.
    :param limit: ``max_response_bytes``, or None for none.
    :param what: the request, for messages.
    :param expect: how the request reads a successful response (``ApiRequest.expect``).
    """

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        limit: int | None,
        what: str,
        *,
        expect: Expect = "json",
    ):
        # Redirects are errors too (never followed): only their first bytes are read.
        self.failed = status >= 300
        #: Scanning the start of the body for a batch's progress.
        self._scanning = expect == "progress" and not self.failed
        if not self.failed and not self._scanning:
            check_announced(headers, limit, what, "max_response_bytes")
        self._budget = ByteBudget(limit, what, "max_response_bytes")
        # A BytesIO rather than a bytearray: its ``getvalue()`` hands over its own buffer
        # (trimmed in place, not copied) when nothing else holds it, so a large answer is
        # resident once when it is returned, not twice (``bytes(bytearray)`` copies it).
        self._body = io.BytesIO()
        self._size = 0

    @classmethod
    def for_request(
        cls, status: int, headers: Mapping[str, str], limit: int | None, request: ApiRequest
    ) -> BodyCollector:
        """The collector of the answer to ``request`` (named and read as it says).

        :param status: HTTP status of the response.
        :param headers: response headers.
        :param limit: ``max_response_bytes``, or None for none.
        :param request: the request answered.
        """
        return cls(status, headers, limit, request.describe, expect=request.expect)

    def add(self, chunk: bytes) -> bool:
        """Take the next chunk; return True when no more of the body is wanted."""
        self._body.write(chunk)
        self._size += len(chunk)
        if self.failed:
            return self._size >= ERROR_BODY_LIMIT
        if self._scanning:
            return self._scan()
        self._budget.take(len(chunk))
        return False

    def _scan(self) -> bool:
        """Whether the body so far tells the batch's state and counts. The limit is not
        counted while the start of the answer is scanned (at most :data:`PROGRESS_HEAD_BYTES`):
        an answer that tells them there is not refused for the rows that follow it. Once
        scanning gives up, the whole answer counts, from its first byte."""
        if self._size < PROGRESS_SCAN_FROM:
            return False
        found = scan_batch_progress(self._body.getvalue())
        if isinstance(found, BatchStatus):
            return True
        if found is HeadScan.WHOLE or self._size >= PROGRESS_HEAD_BYTES:
            self._scanning = False
            self._budget.take(self._size)
        return False

    def body(self) -> bytes:
        """What was kept."""
        body = self._body.getvalue()
        return body[:ERROR_BODY_LIMIT] if self.failed else body
