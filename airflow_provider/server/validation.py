"""Validation of request records against a service's input definitions."""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from airflow_provider.server.errors import ApiError

PARAMETER_TYPES = ("logical", "numeric", "integer", "character", "vector", "matrix", "data.frame")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def matches_type(kind: str, value: Any) -> bool:
    """Whether a decoded JSON ``value`` is a valid encoding of parameter type ``kind``."""
    if kind == "logical":
        return isinstance(value, bool)
    if kind == "numeric":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "character":
        return isinstance(value, str)
    if kind == "vector":
        return isinstance(value, list)
    if kind == "matrix":
        return isinstance(value, list) and all(isinstance(row, list) for row in value)
    if kind == "data.frame":
        return isinstance(value, dict) and all(isinstance(col, list) for col in value.values())
    return False


def validate_record(record: Any, inputs: list[tuple[str, str]], where: str) -> dict[str, Any]:
    """Check one record (an object of input values) and return it.

    :param record: The decoded JSON value.
    :param inputs: The service's ``(name, type)`` input definitions.
    :param where: How to name the record in messages, e.g. ``"Record 3"``.
    :raises ApiError: 400 naming the record and the field.
    """
    if not isinstance(record, dict):
        raise ApiError(400, f"{where} must be a JSON object, got {_json_kind(record)}.")
    names = {name for name, _ in inputs}
    for name, kind in inputs:
        if name not in record:
            raise ApiError(400, f"{where}: missing input '{name}' ({kind}).")
        value = record[name]
        if not matches_type(kind, value):
            raise ApiError(400, f"{where}: input '{name}' must be {kind}, got {_json_kind(value)}.")
    for name in record:
        if name not in names:
            raise ApiError(400, f"{where}: unknown input '{name}'.")
    return record


def validate_batch(body: Any, inputs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Check a batch body: a non-empty JSON array of records (row index 0-based in messages)."""
    if not isinstance(body, list):
        raise ApiError(
            400, f"The batch body must be a JSON array of records, got {_json_kind(body)}."
        )
    if not body:
        raise ApiError(400, "The batch body must contain at least one record.")
    return [validate_record(row, inputs, f"Record {i}") for i, row in enumerate(body)]


#: msgspec types that accept exactly the JSON values :func:`matches_type` accepts.
_STRICT_TYPES: dict[str, Any] = {
    "logical": bool,
    "numeric": int | float,
    "integer": int,
    "character": str,
    "vector": list,
    "matrix": list[list],
    "data.frame": dict[str, list],
}


@functools.lru_cache(maxsize=256)
def _rows_decoder(inputs: tuple[tuple[str, str], ...]) -> msgspec.json.Decoder[Any] | None:
    """A decoder that checks a whole batch body in C: a list of rows with exactly ``inputs``."""
    if not inputs or any(kind not in _STRICT_TYPES for _, kind in inputs):
        return None
    fields = [(f"f{i}", _STRICT_TYPES[kind]) for i, (_, kind) in enumerate(inputs)]
    row = msgspec.defstruct(
        "Row",
        fields,
        rename={f"f{i}": name for i, (name, _) in enumerate(inputs)},
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.json.Decoder(list[row])  # type: ignore[valid-type]


_RAW_ROWS = msgspec.json.Decoder(list[msgspec.Raw])


def batch_row_texts(body: bytes, inputs: list[tuple[str, str]]) -> list[str] | None:
    """The JSON text of every record of a valid batch body, in order, or ``None``.

    This is the fast path for large batches: the body is checked against the inputs by a
    msgspec decoder (no Python loop per value) and each record is kept as the text the client
    sent (nothing is encoded again). ``None`` means "not decided here": the body is invalid, or
    uses something only the standard library reads (``NaN``, numbers beyond double range), and
    the caller must take the general path (:func:`validate_batch`), which gives the exact error
    message or accepts it as before.

    :param body: the raw request body.
    :param inputs: the service's ``(name, type)`` input definitions.
    """
    decoder = _rows_decoder(tuple(inputs))
    if decoder is None:
        return None
    try:
        checked = decoder.decode(body)
        count = len(checked)
        del checked
        rows = _RAW_ROWS.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        # The general path says what is wrong (too deep: see parse_json_body; bytes that are
        # not UTF-8 in a string, which msgspec reports as UnicodeDecodeError or not at all).
        return None
    if not count or len(rows) != count:
        return None
    try:
        return [bytes(row).decode("utf-8") for row in rows]
    except UnicodeDecodeError:
        return None
