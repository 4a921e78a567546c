"""Reading a batch's answer as it arrives: its rows' results a chunk at a time, then its state.

The answer of a finished batch (``GET .../batch/{id}``) is one JSON object whose
``batchExecutionResults`` array holds every row's result: for millions of rows, hundreds of
MiB that a whole-answer read must hold at once, twice (the bytes and the parsed rows). This
reader is fed the body as it comes and hands back the rows completed so far, so the memory it
holds is one chunk, whatever the number of rows.

How it stays exact without a hand-written JSON parser:

- The members before the array (``{"state": ..., "totalItemCount": ...,``) are found with the
  array's key and checked by decoding them closed with ``null}``: a key that was only text
  inside another value makes that decode fail.
- Rows are cut at a ``}`` that may end one (followed by ``,`` or ``]``) and the part before it is
  decoded as an array. A cut inside a string leaves that string open, and a cut inside a row
  leaves it unclosed: either way the decode fails and an earlier ``}`` is tried, so only whole
  rows are ever decoded, each exactly once.
- Members after the array are decoded at the end, with those before.
- Anything else (no such array, members this reader cannot place) is read whole and parsed by
  :func:`~airflow_provider.api.parsers.parse_batch_status_body`, within the same byte limit as
  any answer read into memory. Each row is read by the whole-answer parser's own rules.

Pure: no I/O. Both transports' drivers feed it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from airflow_provider.api.errors import MrsDeployProtocolError
from airflow_provider.api.limits import ByteBudget
from airflow_provider.api.models import BatchStatus, ExecutionResult
from airflow_provider.api.parsers import _Result, parse_batch_status_body, typed_results

#: The key of the rows' results and the opening of its array (any case, as the parser reads
#: keys).
_RESULTS_KEY = re.compile(rb'"batchExecutionResults"\s*:\s*\[', re.IGNORECASE)
_SPACE = b" \t\r\n"
#: Bytes of the answer before the results looked at for their key; past that, it is read whole.
HEAD_BYTES = 1 << 20
#: Cuts tried in one piece of rows before waiting for more bytes (each costs a decode).
_CUTS_PER_FEED = 8
_ROWS = msgspec.json.Decoder(list[_Result])
_ANY = msgspec.json.Decoder()


class BatchAnswerReader:
    """Feed a batch status body with :meth:`feed`; take the rows it returns; :meth:`finish`.

    :param what: the answer, for messages.
    :param limit: the most bytes held at once outside the rows (the members around them, or a
        whole answer this reader does not cut): the connection's ``max_response_bytes``.
    """

    def __init__(self, what: str = "batch status", *, limit: int | None = None) -> None:
        self.what = what
        self._limit = limit
        self._budget = ByteBudget(limit, what, "max_response_bytes")
        self._buffer = bytearray()
        self._phase = "head"
        self._head: dict[str, Any] = {}
        #: Rows handed back so far.
        self.rows = 0

    def feed(self, data: bytes) -> list[ExecutionResult]:
        """Take the next bytes of the body; return the rows they completed, in order."""
        self._buffer += data
        if self._phase == "head":
            self._read_head()
        if self._phase == "rows":
            return self._read_rows()
        if self._phase in ("tail", "whole"):
            self._budget.take(len(data))
        return []

    def finish(self) -> tuple[BatchStatus, list[ExecutionResult]]:
        """The answer's state and counts once the body has ended (without rows), and the rows
        not handed back yet (an answer read whole comes all at once here).

        :raises MrsDeployProtocolError: the body ended inside the rows, or is not a batch
            status (with the whole-answer parser's words).
        """
        if self._phase == "head":
            self._phase = "whole"
        if self._phase == "whole":
            status = parse_batch_status_body(bytes(self._buffer), self.what)
            rows = list(status.results)
            self.rows += len(rows)
            counts = (status.completed_item_count, status.total_item_count)
            return BatchStatus(status.state, *counts), rows
        if self._phase == "rows":
            raise MrsDeployProtocolError(
                f"{self.what}: the answer ended inside the row results (after row "
                f"{self.rows - 1}); the connection may have been cut"
            )
        return self._status(), []

    def _read_head(self) -> None:
        found = _RESULTS_KEY.search(self._buffer)
        if found is None:
            if len(self._buffer) > HEAD_BYTES:
                self._phase = "whole"
                self._budget.take(len(self._buffer))
            return
        try:
            closed = bytes(self._buffer[: found.start()]) + b'"batchExecutionResults":null}'
            head = _ANY.decode(closed)
        except msgspec.DecodeError:
            head = None
        if not isinstance(head, dict):
            self._phase = "whole"
            self._budget.take(len(self._buffer))
            return
        head.pop("batchExecutionResults", None)
        self._head = head
        del self._buffer[: found.end()]
        self._phase = "rows"

    def _read_rows(self) -> list[ExecutionResult]:
        taken: list[ExecutionResult] = []
        while True:
            self._skip_separator()
            if self._buffer[:1] == b"]":
                del self._buffer[:1]
                self._phase = "tail"
                self._budget.take(len(self._buffer))
                return taken
            rows = self._cut_rows()
            if not rows:
                if self._limit is not None and len(self._buffer) > self._limit:
                    self._budget.take(len(self._buffer))
                return taken
            taken += rows

    def _skip_separator(self) -> None:
        """Drop the spaces and the comma between the rows already taken and the next."""
        buffer = self._buffer
        start = 0
        while start < len(buffer) and buffer[start] in _SPACE:
            start += 1
        if buffer[start : start + 1] == b",":
            start += 1
            while start < len(buffer) and buffer[start] in _SPACE:
                start += 1
        if start:
            del buffer[:start]

    def _cut_rows(self) -> list[ExecutionResult]:
        """The whole rows at the start of the buffer, removed from it; none when no cut works
        yet (more bytes are needed)."""
        buffer = self._buffer
        end = len(buffer)
        for _ in range(_CUTS_PER_FEED):
            end = buffer.rfind(b"}", 0, end)
            if end < 0:
                return []
            after = end + 1
            while after < len(buffer) and buffer[after] in _SPACE:
                after += 1
            if after < len(buffer) and buffer[after] not in b",]":
                continue
            piece = b"[" + bytes(buffer[: end + 1]) + b"]"
            rows = self._decode(piece)
            if rows is not None:
                del buffer[: end + 1]
                self.rows += len(rows)
                return rows
        return []

    def _decode(self, piece: bytes) -> list[ExecutionResult] | None:
        """The rows of ``piece`` (a JSON array), or None when it is not whole JSON."""
        try:
            return typed_results(_ROWS.decode(piece), self.rows)
        except msgspec.DecodeError:
            pass
        try:
            items = _decode_any(piece)
        except ValueError:  # msgspec.DecodeError is one
            return None
        return [ExecutionResult.from_json(item, self.rows + i) for i, item in enumerate(items)]

    def _status(self) -> BatchStatus:
        fields = dict(self._head)
        seen = {key.lower() for key in fields} | {"batchexecutionresults"}
        for key, value in self._tail().items():
            if key.lower() in seen:
                raise MrsDeployProtocolError(f"{self.what}: the answer names {key!r} twice")
            fields[key] = value
        return BatchStatus.from_json(fields)

    def _tail(self) -> dict[str, Any]:
        """The members after the rows (``, "state": ...}``), or none (``}``)."""
        tail = bytes(self._buffer).strip(_SPACE)
        if tail == b"}":
            return {}
        rest: Any = None
        if tail[:1] == b",":
            try:
                rest = _decode_any(b"{" + tail[1:])
            except ValueError:
                rest = None
        if not isinstance(rest, dict):
            raise MrsDeployProtocolError(
                f"{self.what}: the answer does not end as a JSON object after its row results"
            )
        return rest


def _decode_any(data: bytes) -> Any:
    """``data`` decoded as any JSON, as the whole-answer parser would.

    msgspec refuses a string with an escaped lone surrogate (``"\\udc80"``), which JSON allows
    and the whole-answer parser (the standard library's decoder) accepts. Only for that error
    is the piece decoded again: a cut inside a row fails often, and each such failure would
    otherwise cost a second, slower decode.

    :raises ValueError: ``data`` is not whole JSON.
    """
    try:
        return _ANY.decode(data)
    except msgspec.DecodeError as exc:
        if "surrogate" not in str(exc):
            raise
    return json.loads(data)
