"""Resuming one file download where it stopped: what to ask for, and whether an answer fits.

A consumer hashes and writes the chunks as they come, so the stream it sees must be the file
exactly once, in order: a retry that started again from the first byte would corrupt it.
Instead, after an interruption the download is re-requested from the first byte not yet
delivered (``Range: bytes=N-`` with ``If-Range``), and the consumer's iterator simply carries on:

* ``206 Partial Content`` starting at N: the rest of the file is passed on;
* ``200 OK`` with the same validator (a server that ignores ``Range``): the first N bytes are
  read and dropped, then the rest is passed on;
* ``200 OK`` with a different ``ETag``/``Last-Modified`` or length: the file changed on the
  server while it was being read; the download fails instead of splicing two versions.

Interruptions are retried as the retry rules say (``max_retries``, their backoff); an attempt
that delivered new bytes resets the count, so a long file over a flaky link still arrives. Each
resume is logged with its reason.

:class:`ResumeState` makes every decision and does no I/O; the drivers that open responses, read
chunks and sleep (blocking or on an event loop) follow it, so both resume by the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from airflow_provider.api.errors import MrsDeployConnectionError, MrsDeployProtocolError
from airflow_provider.api.exchange import RawResponse
from airflow_provider.api.headers import header_value
from airflow_provider.api.limits import ByteBudget, announced_length, check_announced
from airflow_provider.api.logs import LogLike
from airflow_provider.api.retry import RetryRules

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


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
        encoding = (header_value(headers, "Content-Encoding") or "identity").strip().lower()
        encoded = encoding not in ("", "identity")
        return cls(
            None if encoded else announced_length(headers),
            header_value(headers, "ETag"),
            header_value(headers, "Last-Modified"),
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
        if self.etag is not None and header_value(headers, "ETag") not in (None, self.etag):
            return False
        modified = header_value(headers, "Last-Modified")
        if self.last_modified is not None and modified not in (None, self.last_modified):
            return False
        length = None if self.encoded else announced_length(headers)
        return self.length is None or length is None or length == self.length


#: The identity of a file no answer has described yet (immutable, so one for every download).
_NOT_YET_KNOWN = FileIdentity(None, None, None)


@dataclass(frozen=True)
class Resume:
    """What to do after an interruption: wait, then ask for ``headers`` (None: nothing left)."""

    wait: float
    headers: Mapping[str, str] | None


class ResumeState:
    """The bookkeeping of one download, shared by the blocking and async drivers.

    :param what: ``GET /path`` of the file, for messages.
    :param method: request method, for errors.
    :param path: request path, for errors.
    :param policy: the retry rules (attempts and waits between resumes).
    :param log: where resumes are logged.
    :param limit: largest number of bytes accepted (``max_download_bytes``), or None.
    :param stall_timeout: seconds each chunk may take to arrive (the connection's ``timeout``);
        a stalled download resumes like a broken one.
    """

    def __init__(
        self,
        *,
        what: str,
        method: str,
        path: str,
        policy: RetryRules,
        log: LogLike,
        limit: int | None,
        stall_timeout: float,
    ):
        self.what = what
        self.stall_timeout = stall_timeout
        self.method = method
        self.path = path
        self.policy = policy
        self.log = log
        self.budget = ByteBudget(limit, what, "max_download_bytes")
        self.identity = _NOT_YET_KNOWN
        self.failures = 0
        #: Bytes of the current response to drop (a server that ignored ``Range``).
        self.skip = 0
        #: Interruptions survived so far.
        self.resumes = 0

    def started(self, first: RawResponse) -> None:
        """Remember the file's identity from the first answer; refuse an announced oversize."""
        self.identity = FileIdentity.of(first.headers)
        check_announced(first.headers, self.budget.limit, self.what, "max_download_bytes")

    def deliver(self, chunk: bytes) -> bytes | None:
        """The part of ``chunk`` the consumer has not had yet (None: all of it was seen)."""
        if self.skip:
            if self.skip >= len(chunk):
                self.skip -= len(chunk)
                return None
            chunk, self.skip = chunk[self.skip :], 0
        self.failures = 0
        self.budget.take(len(chunk))
        return chunk

    def interrupted(self, error: MrsDeployConnectionError) -> Resume:
        """Decide on a resume after ``error`` broke the body (or re-raise it)."""
        if not error.retryable:
            raise error
        self.failures += 1
        offset = self.budget.used
        if self.failures > self.policy.max_retries:
            raise MrsDeployConnectionError(
                f"{error.message}; gave up after {self.failures} interruptions in a row with "
                f"{offset} bytes received",
                method=self.method,
                path=self.path,
            )
        wait = self.policy.wait_seconds(error, self.failures)
        self.log.warning(
            "Download of %s interrupted after %d bytes (%s); resuming in %.1f s (attempt %d of %d)",
            self.what,
            offset,
            error.message,
            wait,
            self.failures + 1,
            self.policy.max_retries + 1,
        )
        self.resumes += 1
        length = self.identity.length
        if length is not None and offset >= length:
            return Resume(wait, None)
        return Resume(wait, self.identity.resume_headers(offset))

    def resumed(self, response: RawResponse) -> None:
        """Check the answer to a resume and set what to skip.

        :raises MrsDeployProtocolError: when the answer does not continue the same file.
        """
        offset = self.budget.used
        if response.status == 206:
            self.skip = 0
            problem = self._range_problem(response.headers, offset, self.identity)
        else:
            self.skip = offset
            problem = (
                None
                if self.identity.same_file(response.headers)
                else "the file changed on the server while it was being downloaded"
            )
        if problem is not None:
            raise MrsDeployProtocolError(
                f"{self.what}: {problem} (interrupted after {offset} bytes); download it again"
            )

    def finished(self) -> None:
        """Check the total against the announced length."""
        length = self.identity.length
        if length is not None and self.budget.used != length:
            raise MrsDeployProtocolError(
                f"{self.what}: got {self.budget.used} bytes but the server announced {length}"
            )

    @staticmethod
    def _range_problem(
        headers: Mapping[str, str], offset: int, identity: FileIdentity
    ) -> str | None:
        """Why a 206 answer does not continue the file at ``offset`` (None when it does)."""
        content_range = header_value(headers, "Content-Range")
        match = _CONTENT_RANGE.match(content_range or "")
        if match is None or int(match.group(1)) != offset:
            return f"asked to resume at byte {offset}, the server sent range {content_range!r}"
        total = match.group(3)
        if identity.length is not None and total not in ("*", str(identity.length)):
            return f"the file's size changed from {identity.length} to {total} bytes"
        return None
