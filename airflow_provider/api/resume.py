"""Resuming one file download where it stopped: what to ask for, and whether an answer fits.

A consumer hashes and writes the chunks as they come, so the stream it sees must be the file
exactly once, in order, and of one version: a retry that started again from the first byte, or
that carried on with another version of the file, would corrupt it. Instead, after an
interruption the download is re-requested from the first byte not yet delivered
(``Range: bytes=N-`` with ``If-Range``; ``bytes=N-1-`` when the first answer announced no
length, see :meth:`FileIdentity.range_start`), and the consumer's iterator simply carries on:

* ``206 Partial Content`` starting there, with the same validators: a repeated byte is checked
  and dropped, and the rest of the file is passed on. A range that ends before the file's total
  (which the first ``206`` names when the first answer did not) is not the end of the file: the
  download resumes again from there;
* ``200 OK`` with the same validator (a server that ignores ``Range``): the first N bytes are
  read and dropped (the last of them must be the last byte delivered), then the rest is passed
  on;
* ``200 OK`` or ``206`` with a different ``ETag``/``Last-Modified`` or length (or without the
  ``ETag`` the first answer had, which RFC 9110 requires a server to repeat), a ``200`` that
  ends before the N bytes already delivered, a repeated byte that differs, or a ``416`` (the
  file no longer has a byte it had): the file changed on the server while it was being read;
  the download fails instead of splicing two versions.

``Range`` is only sent when the first answer named a validator ``If-Range`` can carry (a strong
``ETag``, else ``Last-Modified``). Without one, nothing stops a server from answering a range of
a newer version, so the file is asked for whole again and the part already delivered is skipped.

Interruptions are retried as the retry rules say (``max_retries``, their backoff); an attempt
that delivered new bytes resets the count, so a long file over a flaky link still arrives. Each
resume is logged with its reason.

:class:`ResumeState` makes every decision and does no I/O; the drivers that open responses, read
chunks and sleep (blocking or on an event loop) follow it, so both resume by the same rules.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass

from airflow_provider.api.errors import (
    MrsDeployApiError,
    MrsDeployConnectionError,
    MrsDeployProtocolError,
)
from airflow_provider.api.exchange import RawResponse
from airflow_provider.api.headers import header_value
from airflow_provider.api.limits import ByteBudget, announced_length, check_announced
from airflow_provider.api.logs import LogLike
from airflow_provider.api.retry import RetryRules

#: Most digits a ``Content-Range`` number may have: 19 reach past any real file size (2**63 has
#: 19), while a longer number (a hostile or broken server) would make ``int()`` refuse it with a
#: bare ``ValueError`` beyond 4300 digits, or cost time converting; it does not match, so the
#: answer takes the usual "unexpected range" error. ``re.ASCII`` keeps ``\s`` and the digits to
#: ASCII ones, as HTTP says (``int()`` would also take other scripts' digits).
_RANGE_DIGITS = 19
_CONTENT_RANGE = re.compile(
    rf"^\s*bytes\s+([0-9]{{1,{_RANGE_DIGITS}}})-([0-9]{{1,{_RANGE_DIGITS}}})"
    rf"/([0-9]{{1,{_RANGE_DIGITS}}}|\*)\s*$",
    re.IGNORECASE | re.ASCII,
)

#: Characters of a ``Content-Range`` quoted in an error message.
_SHOWN_CHARS = 80

#: Why a download fails when the answer to a resume is of another version of the file.
CHANGED = "the file changed on the server while it was being downloaded"


@dataclass(frozen=True)
class FileIdentity:
    """What identifies the version of the file being read (taken from the first response).

    :param length: the whole file's length: the first answer's ``Content-Length`` (if announced
        and not compressed), else the total a ``206`` named in its ``Content-Range``.
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

    @property
    def validator(self) -> str | None:
        """What ``If-Range`` can carry: a strong ``ETag``, else ``Last-Modified`` (or None).

        A weak ``ETag`` may not be sent in ``If-Range`` (RFC 9110, 13.1.5), and without any
        validator a server would answer a range of whatever version it has now.
        """
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified or None

    def range_start(self, offset: int) -> int | None:
        """The first byte a resume after ``offset`` delivered bytes asks for (None: the whole
        file again, when a range could not be made conditional on this version).

        When the length is not known (a chunked answer), the last byte already delivered is
        asked for again: a connection that broke after the file's last byte but before the
        end of the chunked body is then answered with that byte and the file's total (the
        download is complete), where asking past the end would get a ``416`` whose total the
        hook's error does not keep. The repeated byte is checked against the one delivered.
        """
        if self.encoded or self.validator is None:
            return None
        return offset - 1 if self.length is None and offset > 0 else offset

    def resume_headers(self, offset: int) -> dict[str, str]:
        """Headers asking for the bytes from ``range_start(offset)`` on, only if unchanged."""
        start = self.range_start(offset)
        if start is None or self.validator is None:
            return {}
        return {"Range": f"bytes={start}-", "If-Range": self.validator}

    def same_version(self, headers: Mapping[str, str]) -> bool:
        """Whether an answer's validators are this version's: the same ``ETag`` (which a
        server that sent one must send again, RFC 9110 15.3.7), and the same ``Last-Modified``
        if it sends one (not required in a partial answer)."""
        if self.etag is not None and header_value(headers, "ETag") != self.etag:
            return False
        modified = header_value(headers, "Last-Modified")
        return self.last_modified is None or modified in (None, self.last_modified)

    def same_file(self, headers: Mapping[str, str]) -> bool:
        """Whether a full (``200``) response is the same version of the file."""
        if not self.same_version(headers):
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
        #: Bytes of the current response already delivered, to drop (and check the last of).
        self.skip = 0
        #: Interruptions survived so far.
        self.resumes = 0
        #: The last byte delivered: the last one skipped in a resumed answer must equal it.
        self.last = b""
        #: The first byte the pending resume asks for (None: the whole file).
        self.asked: int | None = None
        #: The current response is a ``206``: its end is not necessarily the file's.
        self.partial = False

    def started(self, first: RawResponse) -> None:
        """Remember the file's identity from the first answer; refuse an announced oversize,
        and a partial answer (``206``) that is not the whole file: the first request asks for
        no range, so such an answer (a misbehaving proxy or cache) would pass part of the file
        off as all of it.

        :raises MrsDeployProtocolError: for a first answer that holds part of the file only.
        """
        if first.status == 206:
            content_range = header_value(first.headers, "Content-Range")
            match = _CONTENT_RANGE.match(content_range or "")
            whole = (
                match is not None
                and int(match.group(1)) == 0
                and match.group(3) != "*"
                and int(match.group(2)) == int(match.group(3)) - 1
            )
            if not whole:
                raise MrsDeployProtocolError(
                    f"{self.what}: asked for the whole file, the server answered with part of it "
                    f"(HTTP 206, range {_shown(content_range)}); a proxy or cache in between may "
                    "serve ranges on its own: download it again, or bypass it"
                )
        self.identity = FileIdentity.of(first.headers)
        check_announced(first.headers, self.budget.limit, self.what, "max_download_bytes")

    def deliver(self, chunk: bytes) -> bytes | None:
        """The part of ``chunk`` the consumer has not had yet (None: all of it was seen).

        :raises MrsDeployProtocolError: when the last byte skipped is not the last one
            delivered (a cheap check that the resumed answer is the same file).
        """
        if self.skip:
            if self.skip >= len(chunk):
                self.skip -= len(chunk)
                if not self.skip:
                    self._check_seam(chunk[-1:])
                return None
            self._check_seam(chunk[self.skip - 1 : self.skip])
            chunk, self.skip = chunk[self.skip :], 0
        self.failures = 0
        self.budget.take(len(chunk))
        if chunk:
            self.last = chunk[-1:]
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
        self.asked = self.identity.range_start(offset)
        return Resume(wait, self.identity.resume_headers(offset))

    def resumed(self, response: RawResponse) -> None:
        """Check the answer to a resume and set what to skip.

        :raises MrsDeployProtocolError: when the answer does not continue the same file.
        """
        offset = self.budget.used
        self.partial = response.status == 206
        if self.partial:
            problem = self._range_problem(response.headers, self.asked, self.identity)
            if problem is None:
                # A server that did not announce the length in the first answer (chunked)
                # names it in every range: from now on the file must end there.
                total = _content_range_total(response.headers)
                if self.identity.length is None and total is not None:
                    self.identity = dataclasses.replace(self.identity, length=total)
                self.skip = offset - (self.asked or 0)
        else:
            self.skip = offset
            problem = None if self.identity.same_file(response.headers) else CHANGED
        if problem is not None:
            raise MrsDeployProtocolError(
                f"{self.what}: {problem} (interrupted after {offset} bytes); download it again"
            )

    def refused(self, error: MrsDeployApiError) -> None:
        """Explain a resume answered ``416``: the file no longer has the byte asked for.

        The resume asks for a byte the version being read has (the last one delivered when
        its length is unknown, else one before its announced end); a ``416`` means the file is
        shorter now (or the server cannot resume).

        :raises MrsDeployProtocolError: for a ``416``; other errors are left to the caller.
        """
        if error.status_code == 416 and self.asked is not None:
            raise MrsDeployProtocolError(
                f"{self.what}: {CHANGED} (or the server cannot resume): it refused the bytes "
                f"from {self.asked} on (HTTP 416), so the file is shorter than the "
                f"{self.budget.used} bytes already received; download it again"
            )

    def ended(self) -> None:
        """The current answer's body ended: check it reached the end of the file.

        :raises MrsDeployProtocolError: when a full answer ended before the bytes already
            delivered (a shorter version of the file).
        :raises MrsDeployConnectionError: (retryable) when a ``206`` ended before the file's
            total: the download resumes from there, as after an interruption.
        """
        offset = self.budget.used
        if self.skip:
            raise MrsDeployProtocolError(
                f"{self.what}: {CHANGED}: the new answer ended {self.skip} bytes before the "
                f"{offset} bytes already received; download it again"
            )
        length = self.identity.length
        if self.partial and length is not None and offset < length:
            raise MrsDeployConnectionError(
                f"the server's partial answer ended at byte {offset} of {length}",
                method=self.method,
                path=self.path,
            )

    def finished(self) -> None:
        """Check the total against the announced length."""
        length = self.identity.length
        if length is not None and self.budget.used != length:
            raise MrsDeployProtocolError(
                f"{self.what}: got {self.budget.used} bytes but the server announced {length}"
            )

    def _check_seam(self, skipped: bytes) -> None:
        """The last byte skipped of a resumed answer must be the last byte delivered."""
        if self.last and skipped != self.last:
            raise MrsDeployProtocolError(
                f"{self.what}: {CHANGED}: byte {self.budget.used - 1} differs "
                f"(interrupted after {self.budget.used} bytes); download it again"
            )

    @staticmethod
    def _range_problem(
        headers: Mapping[str, str], start: int | None, identity: FileIdentity
    ) -> str | None:
        """Why a 206 answer does not continue the file from byte ``start`` (None when it does).

        :param start: the first byte asked for (None: no range was asked for).
        """
        content_range = header_value(headers, "Content-Range")
        match = _CONTENT_RANGE.match(content_range or "")
        if start is None:
            return f"asked for the whole file, the server sent range {_shown(content_range)}"
        if match is None or int(match.group(1)) != start:
            return f"asked to resume at byte {start}, the server sent range {_shown(content_range)}"
        total = match.group(3)
        if int(match.group(2)) < start or (total != "*" and int(match.group(2)) >= int(total)):
            return f"the server sent an impossible range {_shown(content_range)}"
        if identity.length is not None and total not in ("*", str(identity.length)):
            return f"the file's size changed from {identity.length} to {total} bytes"
        if identity.length is None and total == "*":
            # Neither answer says where the file ends: the range's end would pass for it.
            return (
                f"the server's range {_shown(content_range)} names no total length, nor did its "
                "first answer, so the end of the file cannot be told"
            )
        if identity.etag is not None and header_value(headers, "ETag") is None:
            # Nothing would show that a server ignoring If-Range sent the same version.
            return "the server's partial answer has no ETag, though its first answer had one"
        if not identity.same_version(headers):
            return CHANGED
        return None


def _shown(content_range: str | None) -> str:
    """``Content-Range`` quoted for a message, cut after :data:`_SHOWN_CHARS` characters: a
    refused header may be kilobytes of digits, which would bury the message."""
    if content_range is None or len(content_range) <= _SHOWN_CHARS:
        return repr(content_range)
    return f"{content_range[:_SHOWN_CHARS]!r}..."


def _content_range_total(headers: Mapping[str, str]) -> int | None:
    """The file's total length a ``206`` names in ``Content-Range`` (None: ``*`` or none)."""
    match = _CONTENT_RANGE.match(header_value(headers, "Content-Range") or "")
    if match is None or match.group(3) == "*":
        return None
    return int(match.group(3))
