"""Response parsers: decoded JSON in, models out; shape errors become ``MrsDeployProtocolError``."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

import msgspec

from airflow_provider.api.errors import CUT_MARK, MrsDeployNotFoundError, MrsDeployProtocolError
from airflow_provider.api.identifiers import batch_id_problem, segment_problem, shown
from airflow_provider.api.models import (
    BatchStatus,
    ExecutionResult,
    ServiceInfo,
    TokenPair,
    output_files_problem,
)


def decode_json(body: bytes, what: str = "response", *, quote: bool = True) -> Any:
    """Decode a JSON body; an empty body decodes to None.

    :param body: raw body.
    :param what: what the body is, for the error message.
    :param quote: show the start of a body that is not JSON in the error. Not for an answer
        that may hold secrets (a token answer): the error is logged and raised, and the tokens
        in it were never handed to Airflow's masker.
    :raises MrsDeployProtocolError: the body is not JSON (nesting too deep to decode included).
    """
    if not body or not body.strip():
        return None
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        if isinstance(err, RecursionError):
            err = ValueError("nested too deeply")
        excerpt = body[:200].decode("utf-8", errors="replace")
        if len(body) > 200:
            excerpt += CUT_MARK  # marked, so a secret cut in two can still be found and hidden
        shown_body = f": {excerpt!r}" if quote else " (its text is not shown: it may hold secrets)"
        raise MrsDeployProtocolError(f"{what} is not valid JSON ({err}){shown_body}") from None


def _no_constant(name: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity``, which Python's decoder takes and JSON has not:
    refused as the strict decoder of the streamed results refuses them, so an answer is not
    read one way or the other depending on which decoder its layout sends it to."""
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent; refused when no float holds it (``1e400``
    would read as infinity, and be written to a table as ``inf``, or as ``null``)."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is too large for a 64-bit float")
    return value


def parse_token_pair(obj: Any, now: float) -> TokenPair:
    """Parse a login or refresh answer.

    :param obj: decoded JSON.
    :param now: current epoch seconds.
    """
    return TokenPair.from_json(obj, now)


def parse_service(obj: Any, name: str | None = None, version: str | None = None) -> ServiceInfo:
    """Parse ``GET /services/{name}/{version}``: a one-element array (or a bare object).

    :param obj: decoded JSON.
    :param name: the service asked for, for the not-found message.
    :param version: the version asked for, for the not-found message.
    :raises MrsDeployNotFoundError: on an empty array (the server's way of saying "no such").
    """
    if isinstance(obj, list):
        if not obj:
            wanted = " ".join(part for part in (name, version) if part) or "service"
            raise MrsDeployNotFoundError(f"service {wanted} not found")
        services = [ServiceInfo.from_json(item) for item in obj]
        for service in services:
            if version is not None and service.version == version:
                return service
        return services[-1]
    return ServiceInfo.from_json(obj)


def parse_services(obj: Any) -> list[ServiceInfo]:
    """Parse ``GET /services`` (a null body means none).

    :param obj: decoded JSON.
    """
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise MrsDeployProtocolError(f"services: expected an array, got {type(obj).__name__}")
    return [ServiceInfo.from_json(item) for item in obj]


def parse_swagger(obj: Any) -> dict[str, Any]:
    """Check that a swagger document is a JSON object and return it.

    :param obj: decoded JSON.
    """
    if not isinstance(obj, Mapping):
        raise MrsDeployProtocolError(f"swagger: expected an object, got {type(obj).__name__}")
    return dict(obj)


def parse_batch_id(obj: Any) -> str:
    """Parse the 202 answer of a batch start: ``{"BatchExecutionId": ...}`` in any key case.

    The id is checked as any batch id the provider sends
    (:func:`~airflow_provider.api.identifiers.batch_id_problem`): an id such as ``..`` would
    make every later request of the batch (status, cancel, files) reach another resource.

    :param obj: decoded JSON.
    """
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if str(key).lower() == "batchexecutionid":
                problem = batch_id_problem(value)
                if problem is None:
                    return str(value)
                raise MrsDeployProtocolError(
                    f"batch start: the server answered batchExecutionId {shown(value)}, which "
                    f"cannot name a batch ({problem}). The server breaks the API contract; the "
                    "batch may have started there: check the service's batches on the server "
                    "and that the connection points at an R Server / ML Server web node"
                )
    raise MrsDeployProtocolError(f"batch start: no batchExecutionId in {shown(obj, 200)}")


def parse_batch_ids(obj: Any) -> list[str]:
    """Parse ``GET /api/{name}/{version}/batch``: an array of ids (a null body means none).

    :param obj: decoded JSON.
    """
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise MrsDeployProtocolError(f"batch list: expected an array of ids, got {shown(obj, 200)}")
    for position, item in enumerate(obj):
        problem = batch_id_problem(item)
        if problem is not None:
            raise MrsDeployProtocolError(
                f"batch list: item {position} is {shown(item)}, which cannot name a batch "
                f"({problem}). The server breaks the API contract; check that the connection "
                "points at an R Server / ML Server web node"
            )
    return list(obj)


def parse_batch_status(obj: Any) -> BatchStatus:
    """Parse ``GET /api/{name}/{version}/batch/{id}``.

    :param obj: decoded JSON.
    """
    return BatchStatus.from_json(obj)


class _Result(msgspec.Struct, rename="camel", forbid_unknown_fields=True, gc=False):
    """A row's result exactly as the API documents it; anything else takes the full parser."""

    success: bool
    error_message: str | None = None
    console_output: str | None = None
    changed_files: list[str] | None = None
    output_parameters: dict[str, Any] | None = None
    output_files: dict[str, str] | None = None


class _Progress(msgspec.Struct, rename="camel"):
    """The three fields of a batch status a waiting client reads (any others are skipped)."""

    state: str
    completed_item_count: int
    total_item_count: int


class _Status(_Progress, forbid_unknown_fields=True, gc=False):
    """A batch status exactly as the API documents it."""

    batch_execution_results: list[_Result] | None = None


_STATUS = msgspec.json.Decoder(_Status)


def parse_batch_status_body(body: bytes, what: str = "batch status") -> BatchStatus:
    """:func:`parse_batch_status` of a raw body, with every row's result.

    A body spelled exactly as the API documents it is decoded straight into typed records
    (msgspec), without the intermediate dictionaries of a generic decode: about half the time
    and memory for a large batch. Any other body (other key spellings or extra keys, numbers
    sent as text, values JSON does not allow) goes through the generic decoder and
    :func:`parse_batch_status`, so both accept, read and reject exactly the same answers.

    :param body: raw body.
    :param what: what the body is, for error messages.
    """
    try:
        found = _STATUS.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # the generic words
        return parse_batch_status(decode_json(body, what))
    results = tuple(typed_results(found.batch_execution_results or ()))
    return dataclasses.replace(_state_and_counts(found), results=results)


def typed_results(rows: Sequence[_Result], first_row: int = 0) -> list[ExecutionResult]:
    """Rows decoded as documented, as results (``first_row``: the index of the first, for
    messages)."""
    return [
        ExecutionResult(
            success=row.success,
            error_message=row.error_message or None,
            console_output=row.console_output,
            changed_files=tuple(row.changed_files) if row.changed_files else (),
            output_parameters=row.output_parameters if row.output_parameters is not None else {},
            output_files=_checked_files(row.output_files, first_row + position),
        )
        for position, row in enumerate(rows)
    ]


def _checked_files(files: dict[str, str] | None, row: int) -> dict[str, str]:
    """A row's ``outputFiles`` once every content is known to be base64, refused with the
    generic parser's words otherwise."""
    if not files:
        return {}
    problem = output_files_problem(files)
    if problem is not None:
        raise MrsDeployProtocolError(f"batch status: row {row}: {problem}")
    return files


_PROGRESS = msgspec.json.Decoder(_Progress)


def parse_batch_progress(body: bytes, what: str = "batch status") -> BatchStatus:
    """State and counts of ``GET /api/{name}/{version}/batch/{id}``, without row results.

    ``body`` may be only the start of the answer, when :func:`scan_batch_progress` found the
    state and counts there (the transports stop reading at that point); it is then read the
    same way again.

    A finished batch's answer carries every row's result, which waiting never reads: they are
    skipped while decoding instead of being built (for a 250,000-row batch, a full parse takes
    about a second of CPU and a few hundred MiB). An answer this fast path does not take as
    is (other key spellings, counts sent as text, invalid JSON) is decoded whole and read by
    the generic rules, so its state and counts are accepted and rejected exactly as
    :func:`parse_batch_status` does; its results are not built on either path.

    :param body: raw body.
    :param what: what the body is, for error messages.
    """
    try:
        found = _PROGRESS.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # the generic words
        head = scan_batch_progress(body)
        if isinstance(head, BatchStatus):
            return head
        # Other key spellings: the state and counts by the generic rules, the results skipped
        # as the fast path skips them (building them held a trigger's loop for 0.2 s a MiB).
        return BatchStatus.from_json(decode_json(body, what), with_results=False)
    return _state_and_counts(found)


class HeadScan(Enum):
    """Why :func:`scan_batch_progress` gave no answer from the start of a body."""

    #: The state and counts may still come: read on and scan again.
    MORE = "more"
    #: They are not all before the results (or the start is not as documented): read the
    #: whole body and parse it.
    WHOLE = "whole"


_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_SCALAR = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null")
_PROGRESS_KEYS = ("state", "completedItemCount", "totalItemCount")


def scan_batch_progress(head: bytes) -> BatchStatus | HeadScan:
    """State and counts from the first bytes of a batch status body, when they come first.

    The documented answer starts ``{"state": ..., "completedItemCount": ...,
    "totalItemCount": ..., "batchExecutionResults": [...]}``: a waiting client can stop
    reading where the results begin, however many rows follow. The top-level members are read
    in order until the first array or object value (or the end of the object); if the three
    keys, spelled as documented and each once, were all among them, their values are checked
    as :func:`parse_batch_status` checks them. Otherwise the answer is :class:`HeadScan`.

    :param head: the bytes of the body received so far.
    """
    found: dict[str, Any] = {}
    pos = _WHITESPACE.match(head).end()  # type: ignore[union-attr]
    if pos == len(head):
        return HeadScan.MORE
    if head[pos : pos + 1] != b"{":
        return HeadScan.WHOLE
    pos += 1
    while True:
        pos = _WHITESPACE.match(head, pos).end()  # type: ignore[union-attr]
        if pos == len(head):
            return HeadScan.MORE
        if head[pos : pos + 1] == b"}":
            break
        key = _JSON_STRING.match(head, pos)
        if key is None:
            return HeadScan.MORE if head[pos : pos + 1] == b'"' else HeadScan.WHOLE
        pos = _WHITESPACE.match(head, key.end()).end()  # type: ignore[union-attr]
        if pos == len(head):
            return HeadScan.MORE
        if head[pos : pos + 1] != b":":
            return HeadScan.WHOLE
        pos = _WHITESPACE.match(head, pos + 1).end()  # type: ignore[union-attr]
        if pos == len(head):
            return HeadScan.MORE
        if head[pos : pos + 1] in (b"[", b"{"):
            break
        quoted = head[pos : pos + 1] == b'"'
        value = (_JSON_STRING if quoted else _JSON_SCALAR).match(head, pos)
        if value is None:  # a string cut off, or a value that is not plain JSON
            return HeadScan.MORE if quoted else HeadScan.WHOLE
        if value.end() == len(head):  # a number may go on in the next bytes
            return HeadScan.MORE
        try:
            name, scalar = json.loads(key.group()), json.loads(value.group())
        except ValueError:  # invalid UTF-8, say: the whole-answer parser gives the error
            return HeadScan.WHOLE
        if name in found:
            return HeadScan.WHOLE
        found[name] = scalar
        pos = _WHITESPACE.match(head, value.end()).end()  # type: ignore[union-attr]
        if pos == len(head):
            return HeadScan.MORE
        if head[pos : pos + 1] == b",":
            pos += 1
        elif head[pos : pos + 1] == b"}":
            break
        else:
            return HeadScan.WHOLE
    if not all(key in found for key in _PROGRESS_KEYS):
        return HeadScan.WHOLE
    return BatchStatus.from_json({key: found[key] for key in _PROGRESS_KEYS})


def _state_and_counts(found: _Status | _Progress) -> BatchStatus:
    """The state and counts of a typed decode, checked as the generic parser checks them."""
    return BatchStatus.from_json(
        {
            "state": found.state,
            "completedItemCount": found.completed_item_count,
            "totalItemCount": found.total_item_count,
        }
    )


def parse_file_list(obj: Any) -> list[str]:
    """Parse a row's file list; a null body means no files.

    :param obj: decoded JSON.
    """
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise MrsDeployProtocolError(
            f"file list: expected an array of names, got {shown(obj, 200)}"
        )
    for position, item in enumerate(obj):
        problem = segment_problem(item)
        if problem is not None:
            raise MrsDeployProtocolError(
                f"file list: item {position} is {shown(item)}, which cannot be fetched by name "
                f"({problem}). The server breaks the API contract"
            )
    return list(obj)


def parse_execution_result(obj: Any) -> ExecutionResult:
    """Parse a ``WebServiceResult`` (consume answer or batch row).

    :param obj: decoded JSON.
    """
    return ExecutionResult.from_json(obj)
