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
- Rows are cut exactly after the ``}`` that closes one. A scanner follows the rows' nesting
  and whether it is inside a string, reading each byte once: it keeps how far it has read, the
  depth there and whether in a string from one chunk to the next. (Cutting at one of the last
  ``}`` of the buffer instead and decoding to see whether the cut held found no cut when rows
  hold records of their own, a data.frame output: every ``}`` tried was inside the last row,
  so rows waited for the end of the answer while each chunk decoded the growing rest again.)
  Not a Python step per byte: bytes methods reduce a chunk to its shape, dropping the escapes
  that could hide a quote (``\\\\``, ``\\"``), then every byte but ``"{}[]``, then adjacent pairs
  (``""``, ``{}``, ``[]``: a level of nesting a round). What is left gives the depth at the
  chunk's ends and whether it was ever between rows; the last row's end is then found walking
  back over the row still open only. A shape that does not reduce so (a string holding a lone
  bracket, the end of the array, deeper nesting) is followed by regular expressions, which
  take whole strings and containers a few levels deep at once.
- The rows a chunk completes are decoded together, with the whole-answer parser's decoders.
  Rows that are whole but not JSON (the decode fails) are refused at once, naming the first.
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
#: The spaces and the comma between rows already taken and the next.
_SEPARATOR = re.compile(rb"[ \t\r\n]*+(?:,[ \t\r\n]*+)?+")
#: Bytes of the answer before the results looked at for their key; past that, it is read whole.
HEAD_BYTES = 1 << 20
_ROWS = msgspec.json.Decoder(list[_Result])
_ANY = msgspec.json.Decoder()

#: Bytes that give a row its shape: every other byte is dropped before the shape is followed.
_STRUCTURE = b'"{}[]'
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(_STRUCTURE)))
#: Openers and closers of both kinds as one, for matching pairs off (``{]`` is not JSON, and the
#: decode refuses it; a bracket's kind never changes where a value ends).
_ONE_KIND = bytes.maketrans(b"[]", b"{}")
#: Rounds of matching pairs off before a chunk's shape is followed by the patterns instead: one
#: round per level of nesting, so only an answer nested deeper pays for the patterns.
_PAIR_ROUNDS = 16

# The patterns that follow a shape (only ``"{}[]`` left, escapes gone) where matching pairs off
# cannot: a string holding brackets, the end of the array, deep nesting. All are possessive
# (``*+``): one that fails (a container not whole yet) gives up at once instead of trying other
# splits, so a failure costs one pass over what it saw.
_SHAPE_STRING = rb'"[^"]*+"'
#: Levels of containers inside a row (or inside the container being followed) that the patterns
#: take whole; deeper ones are entered a level at a time.
_LEVELS = 6


def _container(levels: int) -> bytes:
    """The shape of a whole array or object holding containers at most ``levels`` deep."""
    pattern = rb"[{\[](?:" + _SHAPE_STRING + rb")*+[}\]]"
    for _ in range(levels):
        pattern = rb"[{\[](?:" + _SHAPE_STRING + b"|" + pattern + rb")*+[}\]]"
    return pattern


#: Whole rows (objects) one after the other, from a point between two rows.
_WHOLE_ROWS = re.compile(
    rb"(?:\{(?:" + _SHAPE_STRING + b"|" + _container(_LEVELS - 1) + rb")*+\})*+"
)
#: What may be passed between rows when the next is not a whole row: strings (not rows, which
#: the decode refuses), never a container, as the end of each top-level one must be seen.
_SKIP_BETWEEN_ROWS = re.compile(b"(?:" + _SHAPE_STRING + b")*+")
#: What may be passed inside a row: anything but a container not whole yet (or too deep).
_SKIP_IN_ROW = re.compile(b"(?:" + _SHAPE_STRING + b"|" + _container(_LEVELS) + b")*+")
#: A quote after a backslash: escaped, or closing a string after an escaped backslash
#: (``"\\"``). Without one, every quote opens or closes a string whatever the backslashes do.
#: (A regular expression finds it faster than ``in`` does.)
_BACKSLASH_QUOTE = re.compile(rb'\\"')
_QUOTE, _BACKSLASH, _CLOSE_OBJECT = ord('"'), ord("\\"), ord("}")
_OPENERS = b"{["


def _passed(pattern: re.Pattern[bytes], data: bytearray, at: int = 0) -> int:
    """Where ``pattern``, matched from ``at``, stops (these patterns match nothing too)."""
    found = pattern.match(data, at)
    return found.end() if found else at


class _RowEnds:
    """Finds where the rows of the results array end as their bytes come, each byte once.

    The state kept between chunks: how many bytes of the buffer are scanned, the depth of
    nesting there (0: between rows), and whether inside a string. A chunk is reduced to its
    shape (see the module's docstring). Escapes are dropped first where a quote follows a
    backslash, ``\\\\`` before ``\\"``, as a run of backslashes pairs off from its start (a
    chunk never ends inside an escape: an odd last backslash waits for the byte it escapes).
    Elsewhere every quote opens or closes a string. Dropping two adjacent quotes leaves the
    side of a string every other byte is on unchanged; dropping ``{}`` or ``[]`` leaves the
    depth of every other byte unchanged. Dropping never drops a ``}``: the one that ends a row
    is found again in the buffer by its rank among the chunk's.
    """

    def __init__(self) -> None:
        self.scanned = 0
        self.depth = 0
        self.in_string = False
        #: The end of the array (or a stray closer) was met: no row is looked for after it.
        self.done = False

    def dropped(self, size: int) -> None:
        """The first ``size`` bytes left the buffer (rows taken, or what separates them)."""
        self.scanned = max(0, self.scanned - size)

    def scan(self, buffer: bytearray) -> int:
        """Scan the bytes of ``buffer`` not scanned yet; the end of the last whole row in it
        (just after its ``}``), or 0 when none ends in those bytes."""
        start = self.scanned
        if self.done or start >= len(buffer):
            return 0
        chunk = buffer[start:]
        if chunk[-1] == _BACKSLASH and (len(chunk) - len(chunk.rstrip(b"\\"))) % 2:
            del chunk[-1]  # escapes a byte yet to come: scanned with it
        stop = start + len(chunk)
        if b"\\" in chunk and _BACKSLASH_QUOTE.search(chunk):  # (most chunks hold none)
            chunk = chunk.replace(b"\\\\", b"").replace(b'\\"', b"")
        shape = chunk.translate(None, _NOT_STRUCTURE)
        if self.in_string:
            shape[:0] = b'"'
        shape = shape.replace(b'""', b"")
        # An odd count of quotes: the chunk ends inside the string its last quote opens.
        ends_in_string = shape.count(b'"') % 2 == 1
        structure = shape[: shape.rfind(b'"')] if ends_in_string else shape
        last = self._follow_pairs(structure, ends_in_string=ends_in_string)
        if last == -2:
            last = self._follow_shape(shape)
        self.scanned = stop
        if last < 0:
            return 0
        # The row's ``}`` is the n-th of the chunk's from its end (or from its start).
        after = shape.count(b"}", last + 1)
        before = shape.count(b"}", 0, last)
        at = stop
        if after <= before:
            for _ in range(after + 1):
                at = buffer.rfind(b"}", start, at)
        else:
            at = start - 1
            for _ in range(before + 1):
                at = buffer.find(b"}", at + 1, stop)
        return at + 1

    def _follow_pairs(self, structure: bytearray, *, ends_in_string: bool) -> int:
        """Follow a shape by matching its pairs off; the index of the last row's ``}`` in it,
        -1 for none, or -2 (state unchanged) when the patterns must follow it instead.

        :param structure: the chunk's shape up to the string it ends in, if any.
        """
        paired = structure.translate(_ONE_KIND)
        for _ in range(_PAIR_ROUNDS):
            fewer = paired.replace(b"{}", b"")
            if b'"' in fewer:  # strings emptied of their pairs (``"[1]"``) are empty pairs
                fewer = fewer.replace(b'""', b"")
            if len(fewer) == len(paired):
                break
            paired = fewer
        else:
            return -2  # nested deeper than the rounds
        if b'"' in paired:  # a string holds a bracket without its pair
            return -2
        closed = paired.count(b"}")  # ``}`` * closed + ``{`` * still open
        if closed > self.depth:  # the array's end, or a stray closer
            return -2
        lowest = self.depth - closed
        self.depth = depth = lowest + len(paired) - closed
        self.in_string = ends_in_string
        if lowest:
            return -1  # never between rows
        at = len(structure) - 1
        outside = True
        while at >= 0:  # back over the row still open, to the last between rows
            byte = structure[at]
            if byte == _QUOTE:
                outside = not outside
            elif outside:
                if depth == 0 and byte == _CLOSE_OBJECT:
                    return at
                depth += -1 if byte in _OPENERS else 1
            at -= 1
        return -1

    def _follow_shape(self, shape: bytearray) -> int:
        """Follow any shape with the patterns (from outside a string: one the chunk starts in
        is opened by a quote put before it); the index of the last row's ``}``, or -1.

        Python steps once per container not whole in the shape or nested deeper than the
        patterns take, not once per byte.
        """
        size = len(shape)
        at, depth, last = 0, self.depth, -1
        in_string = False
        while at < size:
            if depth == 0:
                rows_end = _passed(_WHOLE_ROWS, shape, at)
                if rows_end > at:
                    at = rows_end
                    last = at - 1
                at = _passed(_SKIP_BETWEEN_ROWS, shape, at)
            else:
                at = _passed(_SKIP_IN_ROW, shape, at)
            if at >= size:
                break
            byte = shape[at]
            if byte == _QUOTE:  # a string not closed in this chunk
                in_string = True
                break
            if byte in _OPENERS:  # a container not whole yet, or deeper than the patterns
                depth += 1
            elif depth:
                depth -= 1
                if depth == 0 and byte == _CLOSE_OBJECT:
                    last = at
            else:  # the array's end (or a stray closer): no row after it
                self.done = True
                break
            at += 1
        self.depth, self.in_string = depth, in_string
        return last


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
        self._ends = _RowEnds()
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
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # read it whole
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
        # The buffer starts between two rows (or at the first): a comma there is no part of
        # the next piece of rows.
        self._drop(_passed(_SEPARATOR, self._buffer))
        end = self._ends.scan(self._buffer)
        if end:
            with memoryview(self._buffer) as view:
                piece = b"".join((b"[", view[:end], b"]"))
            rows = self._decode(piece)
            self._drop(end)
            self.rows += len(rows)
            taken = rows
        self._drop(_passed(_SEPARATOR, self._buffer))
        if self._buffer[:1] == b"]":
            del self._buffer[:1]
            self._phase = "tail"
            self._budget.take(len(self._buffer))
            return taken
        if self._limit is not None and len(self._buffer) > self._limit:
            self._budget.take(len(self._buffer))
        return taken

    def _drop(self, size: int) -> None:
        """Remove the first ``size`` bytes of the buffer: rows taken, or what separates them
        (which the scanner passes over, scanned yet or not)."""
        if size:
            del self._buffer[:size]
            self._ends.dropped(size)

    def _decode(self, piece: bytes) -> list[ExecutionResult]:
        """The rows of ``piece`` (a JSON array of whole rows).

        :raises MrsDeployProtocolError: they are not JSON (invalid UTF-8, nesting deeper than
            the decoders recurse...): whole rows do not become JSON with more bytes.
        """
        try:
            return typed_results(_ROWS.decode(piece), self.rows)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            pass  # the generic decode, and the whole-answer parser's rules for each row
        try:
            items = _decode_any(piece)
        except (ValueError, RecursionError) as err:  # msgspec.DecodeError is a ValueError
            reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
            raise MrsDeployProtocolError(
                f"{self.what}: the row results from row {self.rows} on are not valid JSON "
                f"({reason})"
            ) from None
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
            except (ValueError, RecursionError):
                rest = None
        if not isinstance(rest, dict):
            raise MrsDeployProtocolError(
                f"{self.what}: the answer does not end as a JSON object after its row results"
            )
        return rest


def _decode_any(data: bytes) -> Any:
    """``data`` decoded as any JSON, as the whole-answer parser would.

    msgspec refuses a string with an escaped lone surrogate (``"\\udc80"``), which JSON allows
    and the whole-answer parser (the standard library's decoder) accepts; a lone high surrogate
    fewer than six bytes before the end (``["\\ud800"]``, a row's last value) it calls
    truncated. Only for those errors is the piece decoded again, so that JSON msgspec refuses
    for other reasons costs one decode; the pieces decoded are whole (rows cut at their end,
    the members after them once the body has ended), so a piece really cut short is rare and
    its second decode cheap.

    :raises ValueError: ``data`` is not whole JSON.
    """
    try:
        return _ANY.decode(data)
    except msgspec.DecodeError as exc:
        message = str(exc)
        if "surrogate" not in message and "truncated" not in message:
            raise
    return json.loads(data)
