"""Response models: frozen dataclasses built from the server's JSON by validating ``from_json``.

Top-level keys are matched case-insensitively (the published schemas and real servers disagree on
casing in places); user-defined names such as output parameter names keep their case.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider.api.errors import MrsDeployProtocolError
from airflow_provider.api.identifiers import shown, token_problem
from airflow_provider.api.state import MrsDeployBatchState

#: Line breaks and spaces a base64 encoder may put between groups (MIME wraps lines).
_BASE64_SPACING = re.compile(r"[\t\n\r ]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _fields(obj: Any, what: str) -> dict[str, Any]:
    """Return ``obj``'s keys lowercased, or raise when it is not a JSON object.

    Two keys that differ only in case (``"state"`` and ``"STATE"``) are refused: which one to
    read would be a guess, and the typed fast paths, which read the documented spelling, would
    read the other one than a lookup ignoring case.
    """
    if not isinstance(obj, Mapping):
        raise MrsDeployProtocolError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    fields = {str(key).lower(): value for key, value in obj.items()}
    if len(fields) < len(obj):
        raise MrsDeployProtocolError(f"{what}: {_case_variants(obj)}")
    return fields


def _case_variants(obj: Mapping[Any, Any]) -> str:
    """Which keys of ``obj`` differ only in case, as an error message's words."""
    spellings: dict[str, list[str]] = {}
    for key in obj:
        spellings.setdefault(str(key).lower(), []).append(str(key))
    named = [names for names in spellings.values() if len(names) > 1]
    shown = "; ".join(" and ".join(repr(name) for name in names) for names in named)
    return (
        f"the answer names {shown}: keys that differ only in case, of which one would be read "
        "and the other ignored"
    )


def _required_str(fields: Mapping[str, Any], key: str, what: str) -> str:
    value = fields.get(key.lower())
    if not isinstance(value, str) or not value:
        raise MrsDeployProtocolError(f"{what}: missing or invalid {key!r} (got {value!r})")
    return value


def _optional_str(fields: Mapping[str, Any], key: str, what: str) -> str | None:
    value = fields.get(key.lower())
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise MrsDeployProtocolError(f"{what}: {key!r} must be a string (got {value!r})")
    return value


def _count(fields: Mapping[str, Any], key: str, what: str) -> int:
    value = fields.get(key.lower())
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise MrsDeployProtocolError(f"{what}: {key!r} must be an integer (got {value!r})")
    try:
        number = int(value)
    except ValueError:
        raise MrsDeployProtocolError(
            f"{what}: {key!r} must be an integer (got {value!r})"
        ) from None
    if number < 0:
        raise MrsDeployProtocolError(f"{what}: {key!r} must not be negative (got {number})")
    return number


def _list(fields: Mapping[str, Any], key: str, what: str) -> list[Any]:
    value = fields.get(key.lower())
    if value is None:
        return []
    if not isinstance(value, list):
        raise MrsDeployProtocolError(f"{what}: {key!r} must be an array (got {value!r})")
    return value


def _string_list(fields: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    items = _list(fields, key, what)
    if not all(isinstance(item, str) for item in items):
        raise MrsDeployProtocolError(f"{what}: {key!r} must be an array of strings")
    return tuple(items)


def _dict(fields: Mapping[str, Any], key: str, what: str) -> dict[str, Any]:
    value = fields.get(key.lower())
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MrsDeployProtocolError(f"{what}: {key!r} must be an object (got {value!r})")
    return dict(value)


def _token(value: str, key: str, what: str) -> str:
    """``value`` when it can be sent back as a bearer token; the message never quotes it."""
    problem = token_problem(value)
    if problem is not None:
        raise MrsDeployProtocolError(
            f"{what}: the server's {key!r} cannot be sent as a bearer token: {problem}. A token "
            "must be visible ASCII without spaces; check that the connection points at the "
            "server's web node itself, not a proxy or sign-in page answering in its place"
        )
    return value


def base64_problem(content: str) -> str | None:
    """Why ``content`` is not a file's content in base64, or None when it is.

    The standard alphabet with its padding, as the API sends ``outputFiles``; line breaks
    and spaces between groups are allowed. Anything else would be dropped or misread by a
    lenient decoder, and the file written would not be the one the service produced.

    :param content: the text from the server.
    """
    compact = _BASE64_SPACING.sub("", content)
    if not _BASE64.fullmatch(compact):
        for position, char in enumerate(compact, start=1):
            if not (char.isascii() and (char.isalnum() or char in "+/=")):
                return f"it holds {shown(char)}, which is not in the base64 alphabet"
            if char == "=" and compact[position:].strip("="):
                return "it has '=' padding before its end"
        return "it ends with more than two '=' padding characters"
    if len(compact) % 4:
        return f"its length ({len(compact)} without spacing) is not a multiple of 4: cut short?"
    return None


def output_files_problem(files: Mapping[Any, Any]) -> str | None:
    """Why a result's ``outputFiles`` cannot be written as files, or None when they can.

    :param files: file name to content, from the server.
    """
    for name, content in files.items():
        problem = (
            base64_problem(content)
            if isinstance(content, str)
            else f"it is of type {type(content).__name__}, not a string"
        )
        if problem is not None:
            return (
                f"output file {shown(name)} is not base64 ({problem}). outputFiles must hold "
                "each file's content in base64: the service's result breaks the API contract; "
                "check the service (or its server) that produced it"
            )
    return None


def decode_output_file(content: str, where: str) -> bytes:
    """The bytes of a file that came inline in a result (``outputFiles``).

    :param content: the base64 text.
    :param where: which row and file, for the message (e.g. ``row 3, file 'plot.png'``).
    :raises MrsDeployProtocolError: when the text is not base64, naming ``where``.
    """
    problem: str | None = (
        base64_problem(content) if isinstance(content, str) else "it is not a string"
    )
    if problem is None:
        try:
            return base64.b64decode(_BASE64_SPACING.sub("", content), validate=True)
        except (binascii.Error, ValueError) as err:
            problem = str(err)
    raise MrsDeployProtocolError(
        f"{where}: the file's content is not base64 ({problem}); the service's result breaks "
        "the API contract, check the service that produced it"
    )


def _number(value: Any, key: str, what: str) -> float:
    """Accept an int, a float or a numeric string (some servers send ``expires_on`` quoted).

    Only a finite number: ``NaN`` (JSON's decoder takes it, and ``"nan"`` reads as one) would
    never compare as expiring, so the token would be renewed only after a 401, and an
    infinity the same; an integer too large for a float is no time either.
    """
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):
            number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError, OverflowError):
            number = float(value.strip())
    if number is None or not math.isfinite(number):
        raise MrsDeployProtocolError(
            f"{what}: {key!r} must be a finite number of seconds (got {shown(value, 40)})"
        )
    return number


@dataclass(frozen=True)
class ParameterDefinition:
    """One input or output parameter of a service (``type`` is e.g. ``numeric``, ``data.frame``)."""

    name: str
    type: str

    @classmethod
    def from_json(cls, obj: Any) -> ParameterDefinition:
        """Build from ``{"name", "type"}``.

        :param obj: decoded JSON.
        """
        fields = _fields(obj, "parameter definition")
        return cls(
            name=_required_str(fields, "name", "parameter definition"),
            type=_required_str(fields, "type", "parameter definition"),
        )


@dataclass(frozen=True)
class ServiceInfo:
    """A published web service version."""

    name: str
    version: str
    runtime_type: str | None = None
    operation_id: str | None = None
    description: str | None = None
    input_parameters: tuple[ParameterDefinition, ...] = ()
    output_parameters: tuple[ParameterDefinition, ...] = ()
    output_file_names: tuple[str, ...] = ()
    published_by: str | None = None
    creation_time: str | None = None
    snapshot_id: str | None = None
    permission: str | None = None

    @classmethod
    def from_json(cls, obj: Any) -> ServiceInfo:
        """Build from one service object (not the one-element array: see ``parse_service``).

        :param obj: decoded JSON.
        """
        what = "service"
        fields = _fields(obj, what)
        return cls(
            name=_required_str(fields, "name", what),
            version=_required_str(fields, "version", what),
            runtime_type=_optional_str(fields, "runtimeType", what),
            operation_id=_optional_str(fields, "operationId", what),
            description=_optional_str(fields, "description", what),
            input_parameters=tuple(
                ParameterDefinition.from_json(item)
                for item in _list(fields, "inputParameterDefinitions", what)
            ),
            output_parameters=tuple(
                ParameterDefinition.from_json(item)
                for item in _list(fields, "outputParameterDefinitions", what)
            ),
            output_file_names=_string_list(fields, "outputFileNames", what),
            published_by=_optional_str(fields, "versionPublishedBy", what),
            creation_time=_optional_str(fields, "creationTime", what),
            snapshot_id=_optional_str(fields, "snapshotId", what),
            permission=_optional_str(fields, "myPermissionOnService", what),
        )


@dataclass(frozen=True)
class TokenPair:
    """An access token, its refresh token and when the access token expires (epoch seconds).

    The tokens are left out of ``repr`` so that logging the object cannot leak them.
    """

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_on: float
    token_type: str = "Bearer"

    @classmethod
    def from_json(cls, obj: Any, now: float) -> TokenPair:
        """Build from a ``/login`` or ``/login/refreshToken`` answer.

        :param obj: decoded JSON.
        :param now: current epoch seconds, used when only ``expires_in`` is given.
        """
        what = "token response"
        fields = _fields(obj, what)
        # Neither token is ever quoted in a message: what the server sent may be a credential.
        access_token = fields.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            kind = "empty" if access_token == "" else f"of type {type(access_token).__name__}"
            raise MrsDeployProtocolError(f"{what}: missing or invalid 'access_token' ({kind})")
        _token(access_token, "access_token", what)
        refresh_token = fields.get("refresh_token")
        if isinstance(refresh_token, (int, float)) and not isinstance(refresh_token, bool):
            refresh_token = str(refresh_token)
        if refresh_token is not None and not isinstance(refresh_token, str):
            kind = type(refresh_token).__name__
            raise MrsDeployProtocolError(f"{what}: 'refresh_token' must be a string (not {kind})")
        refresh_token = refresh_token or None
        if refresh_token is not None:
            _token(refresh_token, "refresh_token", what)
        if fields.get("expires_on") not in (None, ""):
            expires_on = _number(fields["expires_on"], "expires_on", what)
        elif fields.get("expires_in") not in (None, ""):
            expires_on = now + _number(fields["expires_in"], "expires_in", what)
        else:
            raise MrsDeployProtocolError(f"{what}: neither 'expires_on' nor 'expires_in' given")
        token_type = _optional_str(fields, "token_type", what) or "Bearer"
        return cls(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_on=expires_on,
            token_type=token_type,
        )

    def expires_within(self, seconds: float, now: float) -> bool:
        """True when the access token expires less than ``seconds`` after ``now``.

        :param seconds: lead time.
        :param now: current epoch seconds.
        """
        return self.expires_on - now < seconds


@dataclass(frozen=True)
class ExecutionResult:
    """The result of one consume call or one batch row (``WebServiceResult``)."""

    success: bool
    error_message: str | None = None
    console_output: str | None = None
    changed_files: tuple[str, ...] = ()
    output_parameters: dict[str, Any] = field(default_factory=dict)
    output_files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Any, row: int | None = None) -> ExecutionResult:
        """Build from a ``WebServiceResult`` object.

        :param obj: decoded JSON.
        :param row: the row's index in its batch, for messages (None for a consume answer).
        """
        what = "execution result" if row is None else f"batch status: row {row}"
        fields = _fields(obj, what)
        success = fields.get("success")
        if not isinstance(success, bool):
            raise MrsDeployProtocolError(
                f"{what}: 'success' must be true or false (got {shown(success)})"
            )
        output_files = _dict(fields, "outputFiles", what)
        problem = output_files_problem(output_files)
        if problem is not None:
            raise MrsDeployProtocolError(f"{what}: {problem}")
        return cls(
            success=success,
            error_message=_optional_str(fields, "errorMessage", what) or None,
            console_output=_optional_str(fields, "consoleOutput", what),
            changed_files=_string_list(fields, "changedFiles", what),
            output_parameters=_dict(fields, "outputParameters", what),
            output_files=output_files,
        )


def count_problem(state: MrsDeployBatchState, completed: int, total: int) -> str | None:
    """Why a batch's counts break the API contract, or None.

    ``completedItemCount`` counts the rows finished, succeeded or failed, of the
    ``totalItemCount`` submitted, all of them once the batch is ``Complete``. A ``Complete``
    batch with rows unfinished would end a wait as a success that Collect then refuses (fewer
    results than rows). Odd counts of a batch still running are tolerated (progress is shown
    capped): the state, not the counts, ends a wait.
    """
    if state is MrsDeployBatchState.COMPLETE and completed != total:
        return (
            f"the batch is Complete with {completed} of its {total} rows finished; the server "
            "breaks the API contract (a complete batch has finished every row)"
        )
    return None


@dataclass(frozen=True)
class BatchStatus:
    """State, progress and (possibly partial) per-row results of a batch execution."""

    state: MrsDeployBatchState
    completed_item_count: int
    total_item_count: int
    results: tuple[ExecutionResult, ...] = ()

    @classmethod
    def from_json(cls, obj: Any, *, with_results: bool = True) -> BatchStatus:
        """Build from a ``BatchWebServiceResult`` object.

        :param obj: decoded JSON.
        :param with_results: build (and check) the row results; without, only the state and
            counts are read, as waiting needs (building 100,000 results takes a second).
        :raises MrsDeployProtocolError: on a missing or unknown ``state``, or counts that break
            the API contract (see :func:`count_problem`).
        """
        what = "batch status"
        fields = _fields(obj, what)
        if "state" not in fields:
            raise MrsDeployProtocolError(f"{what}: missing 'state'")
        state = MrsDeployBatchState.parse(fields["state"])
        completed = _count(fields, "completedItemCount", what)
        total = _count(fields, "totalItemCount", what)
        problem = count_problem(state, completed, total)
        if problem is not None:
            raise MrsDeployProtocolError(f"{what}: {problem}")
        results = _list(fields, "batchExecutionResults", what) if with_results else []
        return cls(
            state=state,
            completed_item_count=completed,
            total_item_count=total,
            results=tuple(ExecutionResult.from_json(item, row) for row, item in enumerate(results)),
        )

    @property
    def is_terminal(self) -> bool:
        """True when the batch will not change any more."""
        return self.state.is_terminal

    @property
    def is_failed(self) -> bool:
        """True when the batch as a whole failed."""
        return self.state.is_failed

    @property
    def progress(self) -> float:
        """Completed fraction in [0, 1]; an empty batch counts as done once terminal."""
        if self.total_item_count <= 0:
            return 1.0 if self.is_terminal else 0.0
        return min(1.0, self.completed_item_count / self.total_item_count)

    def to_summary(self) -> dict[str, Any]:
        """Small JSON-able summary (no row payloads) for logs, XCom and trigger events.

        Keys: ``state`` (wire value), ``completed_item_count``, ``total_item_count``.
        """
        return {
            "state": self.state.value,
            "completed_item_count": self.completed_item_count,
            "total_item_count": self.total_item_count,
        }
