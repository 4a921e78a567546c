"""Streaming one file, resuming where it stopped when the connection breaks mid-body.

A consumer such as the collect operator hashes and writes the chunks as they come, so the
stream it sees must be the file exactly once, in order: a retry that started again from the
first byte would corrupt it. Instead, after an interruption the download is re-requested from
the first byte not yet delivered (``Range: bytes=N-`` with ``If-Range``), and the consumer's
iterator simply carries on:

* ``206 Partial Content`` starting at N: the rest of the file is passed on;
* ``200 OK`` with the same validator (a server that ignores ``Range``): the first N bytes are
  read and dropped, then the rest is passed on;
* ``200 OK`` with a different ``ETag``/``Last-Modified`` or length: the file changed on the
  server while it was being read; the download fails instead of splicing two versions.

Interruptions are retried as the hook's retry policy says (``max_retries``, its backoff); an
attempt that delivered new bytes resets the count, so a long file over a flaky link still
arrives. Each resume is logged with its reason.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from airflow_provider.api.errors import MrsDeployConnectionError, MrsDeployProtocolError
from airflow_provider.hooks.flow import RawResponse
from airflow_provider.hooks.limits import ByteBudget, announced_length, check_announced
from airflow_provider.hooks.logs import LogLike
from airflow_provider.hooks.retry import RetryPolicy
from airflow_provider.hooks.transport_sync import iter_stream

#: Opens the file's response; called with extra headers (empty, or ``Range``/``If-Range``).
Opener = Callable[[Mapping[str, str]], RawResponse]

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


@dataclass(frozen=True)
class FileIdentity:
    """What identifies the version of the file being read (taken from the first response).

    :param length: ``Content-Length`` of the whole file, if announced and not compressed.
    :param etag: ``ETag``, if any.
    :param last_modified: ``Last-Modified``, if any.
    :param encoded: the body is sent compressed (``Content-Encoding``): byte ranges would count
        compressed bytes, so a resume downloads again and skips what was delivered.
    """

    length: int | None
    etag: str | None
    last_modified: str | None
    encoded: bool = False

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> FileIdentity:
        """Read it from the first (``200``) response's headers."""
        encoding = (_header(headers, "Content-Encoding") or "identity").strip().lower()
        encoded = encoding not in ("", "identity")
        return cls(
            None if encoded else announced_length(headers),
            _header(headers, "ETag"),
            _header(headers, "Last-Modified"),
            encoded,
        )

    def resume_headers(self, offset: int) -> dict[str, str]:
        """Headers asking for the bytes from ``offset`` on, only if the file is unchanged."""
        if self.encoded:
            return {}
        headers = {"Range": f"bytes={offset}-"}
        validator = self.etag if self.etag and not self.etag.startswith("W/") else None
        validator = validator or self.last_modified
        if validator:
            headers["If-Range"] = validator
        return headers

    def same_file(self, headers: Mapping[str, str]) -> bool:
        """Whether a full (``200``) response is the same version of the file."""
        if self.etag is not None and _header(headers, "ETag") not in (None, self.etag):
            return False
        modified = _header(headers, "Last-Modified")
        if self.last_modified is not None and modified not in (None, self.last_modified):
            return False
        length = None if self.encoded else announced_length(headers)
        return self.length is None or length is None or length == self.length


class _Body:
    """One open response and the iterator over its chunks; closing it closes the response."""

    def __init__(self, raw: RawResponse, chunk_size: int, method: str, path: str, skip: int = 0):
        self.raw = raw
        self._chunks = iter_stream(raw, chunk_size, method, path)
        self._skip = skip

    def next_chunk(self) -> bytes | None:
        """The next chunk, None at the end; bytes to skip (already delivered) are dropped."""
        while True:
            chunk = next(self._chunks, None)
            if chunk is None or self._skip == 0:
                return chunk
            if self._skip >= len(chunk):
                self._skip -= len(chunk)
                continue
            chunk, self._skip = chunk[self._skip :], 0
            return chunk

    def close(self) -> None:
        """Close the iterator and the response (also when iteration never started)."""
        self._chunks.close()
        stream = self.raw.stream
        if stream is not None:
            stream.close()


class _Empty(_Body):
    """The end of a file whose last bytes had all arrived before the connection broke."""

    def __init__(self) -> None:
        pass

    def next_chunk(self) -> bytes | None:
        return None

    def close(self) -> None:
        pass


class ResumableDownload:
    """Iterate over one file's bytes, resuming after interruptions.

    :param open_response: sends the GET (with the hook's retries, login and status mapping) and
        returns the successful streamed response.
    :param what: ``GET /path`` of the file, for messages.
    :param method: request method, for errors.
    :param path: request path, for errors.
    :param policy: the hook's retry policy (attempts and waits between resumes).
    :param log: where resumes are logged.
    :param limit: largest number of bytes accepted (``max_download_bytes``), or None.
    :param chunk_size: bytes per chunk (at most).
    :param sleep: waits between attempts (replaceable in tests).
    """

    def __init__(
        self,
        open_response: Opener,
        *,
        what: str,
        method: str,
        path: str,
        policy: RetryPolicy,
        log: LogLike,
        limit: int | None,
        chunk_size: int,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.open_response = open_response
        self.what = what
        self.method = method
        self.path = path
        self.policy = policy
        self.log = log
        self.limit = limit
        self.chunk_size = chunk_size
        self.sleep = sleep
        #: Interruptions survived so far.
        self.resumes = 0

    def __iter__(self) -> Iterator[bytes]:
        first = self.open_response({})
        body = _Body(first, self.chunk_size, self.method, self.path)
        identity = FileIdentity.of(first.headers)
        budget = ByteBudget(self.limit, self.what, "max_download_bytes")
        failures = 0
        try:
            check_announced(first.headers, self.limit, self.what, "max_download_bytes")
            while True:
                try:
                    chunk = body.next_chunk()
                except MrsDeployConnectionError as err:
                    if not err.retryable:
                        raise
                    failures += 1
                    body.close()
                    body = self._resume(identity, budget.used, failures, err)
                    continue
                if chunk is None:
                    break
                failures = 0
                budget.take(len(chunk))
                yield chunk
        finally:
            body.close()
        if identity.length is not None and budget.used != identity.length:
            raise MrsDeployProtocolError(
                f"{self.what}: got {budget.used} bytes but the server announced {identity.length}"
            )

    def _resume(
        self, identity: FileIdentity, offset: int, failures: int, error: MrsDeployConnectionError
    ) -> _Body:
        """Wait, re-request from ``offset`` and return the body that continues from there."""
        if failures > self.policy.max_retries:
            raise MrsDeployConnectionError(
                f"{error.message}; gave up after {failures} interruptions in a row with "
                f"{offset} bytes received",
                method=self.method,
                path=self.path,
            )
        wait = self.policy.wait_seconds(error, failures)
        self.log.warning(
            "Download of %s interrupted after %d bytes (%s); resuming in %.1f s (attempt %d of %d)",
            self.what,
            offset,
            error.message,
            wait,
            failures + 1,
            self.policy.max_retries + 1,
        )
        self.sleep(wait)
        self.resumes += 1
        if identity.length is not None and offset >= identity.length:
            return _Empty()
        response = self.open_response(identity.resume_headers(offset))
        if response.status == 206:
            body = _Body(response, self.chunk_size, self.method, self.path)
            problem = self._range_problem(response.headers, offset, identity)
        else:
            body = _Body(response, self.chunk_size, self.method, self.path, skip=offset)
            problem = (
                None
                if identity.same_file(response.headers)
                else "the file changed on the server while it was being downloaded"
            )
        if problem is not None:
            body.close()
            raise MrsDeployProtocolError(
                f"{self.what}: {problem} (interrupted after {offset} bytes); download it again"
            )
        return body

    @staticmethod
    def _range_problem(
        headers: Mapping[str, str], offset: int, identity: FileIdentity
    ) -> str | None:
        """Why a 206 answer does not continue the file at ``offset`` (None when it does)."""
        content_range = _header(headers, "Content-Range")
        match = _CONTENT_RANGE.match(content_range or "")
        if match is None or int(match.group(1)) != offset:
            return f"asked to resume at byte {offset}, the server sent range {content_range!r}"
        total = match.group(3)
        if identity.length is not None and total not in ("*", str(identity.length)):
            return f"the file's size changed from {identity.length} to {total} bytes"
        return None
