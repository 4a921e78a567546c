"""Checking records against a service's inputs before anything is sent: every problem names
the row (0-based, the index the server will use), the column and the value, so that nothing
is half-submitted."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from airflow_provider.api import ParameterDefinition
from airflow_provider.api.identifiers import shown
from airflow_provider.exceptions import MrsDeployRecordsError
from airflow_provider.records.read import ROW_NUMBERING, ROWS_ATTR, SOURCE_ATTR

#: How many offending cells an error quotes before summarising the rest.
MAX_REPORTED_PROBLEMS = 5


@dataclass(frozen=True)
class PreparedRecords:
    """Records reduced to the service's inputs, in input order, checked and ready to encode."""

    frame: pd.DataFrame
    dropped_columns: tuple[str, ...]

    @property
    def row_count(self) -> int:
        """Number of rows (the batch's ``totalItemCount``)."""
        return len(self.frame)


def cut_records(prepared: PreparedRecords, row_counts: Sequence[int]) -> list[PreparedRecords]:
    """The records cut into consecutive parts of ``row_counts`` rows (input order kept)."""
    parts, start = [], 0
    for count in row_counts:
        frame = prepared.frame.iloc[start : start + count].reset_index(drop=True)
        parts.append(PreparedRecords(frame, prepared.dropped_columns))
        start += count
    return parts


def check_has_rows(frame: pd.DataFrame) -> None:
    """Refuse records without a row (the server would refuse the batch), naming the source.

    :raises MrsDeployRecordsError: when ``frame`` has no row.
    """
    if len(frame) == 0:
        source = str(frame.attrs.get(SOURCE_ATTR) or "the records")
        columns = f" (only the columns {[str(c) for c in frame.columns]})" if frame.shape[1] else ""
        raise MrsDeployRecordsError(
            f"{source} holds no rows{columns}; a batch needs at least one row, so nothing was "
            "sent. Check the step that produced the records: a CSV with only a header, an "
            "empty list or an empty query result"
        )


def prepare_records(frame: pd.DataFrame, inputs: Sequence[ParameterDefinition]) -> PreparedRecords:
    """Check ``frame`` against the service's input definitions and keep only those columns.

    Raises :class:`MrsDeployRecordsError` when there is no row (a header-only CSV, an empty
    list or query result: the server would refuse the batch), listing expected and found
    columns when an input is missing, and naming the value, its row and column for every
    value JSON cannot carry or the type rejects.
    """
    source = str(frame.attrs.get(SOURCE_ATTR) or "the records")
    numbering = str(frame.attrs.get(ROWS_ATTR) or ROW_NUMBERING)
    check_has_rows(frame)
    expected = [p.name for p in inputs]
    found = [str(c) for c in frame.columns]
    missing = [name for name in expected if name not in found]
    if missing:
        raise MrsDeployRecordsError(
            f"records lack the service input(s) {missing}; the service expects {expected}, "
            f"the records have {found}. Rename or add the columns before submitting."
        )
    dropped = tuple(c for c in found if c not in expected)
    frame = frame.rename(columns=str)[expected]
    problems: list[str] = []
    converted: dict[str, pd.Series] = {}
    for parameter in inputs:
        column, column_problems = _check_column(frame[parameter.name], parameter)
        converted[parameter.name] = column
        problems.extend(column_problems)
    if problems:
        quoted = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(quoted)
        suffix = f" (and {more} more)" if more > 0 else ""
        raise MrsDeployRecordsError(
            f"{source} cannot be sent as JSON to the service: "
            + "; ".join(quoted)
            + suffix
            + f" ({numbering}). Fix these values or drop their rows: a numeric input takes "
            "only numbers, and JSON has no NaN, inf or missing values."
        )
    prepared = pd.DataFrame(converted, index=pd.RangeIndex(len(frame)))
    return PreparedRecords(prepared, dropped)


def _problem(row: int, column: str, message: str) -> str:
    return f"row {row}, column {column!r}: {message}"


def _check_column(series: pd.Series, parameter: ParameterDefinition) -> tuple[pd.Series, list[str]]:
    """Validate one column for its declared type; return it converted to JSON-ready values."""
    name, kind = parameter.name, parameter.type.lower()
    values = series.reset_index(drop=True)
    if (
        kind in ("numeric", "integer")
        and pd.api.types.is_numeric_dtype(values.dtype)
        and not (pd.api.types.is_bool_dtype(values.dtype))
    ):
        array = values.to_numpy(dtype="float64", na_value=np.nan)
        bad = np.flatnonzero(~np.isfinite(array))
        problems = [_problem(int(i), name, _non_finite(array[i])) for i in bad]
        if kind == "integer" and not bad.size:
            fractional = np.flatnonzero(array != np.floor(array))
            problems += [
                _problem(int(i), name, f"{array[i]} is not an integer") for i in fractional
            ]
            if not fractional.size and not pd.api.types.is_integer_dtype(values.dtype):
                values = pd.Series(array.astype("int64"))
        return values, problems
    if (kind == "logical" and pd.api.types.is_bool_dtype(values.dtype)) or (
        kind == "character" and isinstance(values.dtype, pd.StringDtype)
    ):
        # Typed columns need no look at each value: only missing ones can be wrong.
        missing = np.flatnonzero(values.isna().to_numpy())
        return values, [_problem(int(i), name, "value is missing") for i in missing]
    problems = []
    # Numbers written as text in a numeric column. A file's reader reads a whole column as
    # text when one value in it is not a number: that value is the one to report, not every
    # number around it. So these count only when nothing else in the column is wrong.
    texts = []
    numeric = kind in ("numeric", "integer")
    for position, value in enumerate(values.tolist()):
        message = _check_value(value, kind)
        if message is None:
            continue
        if numeric and _is_number_text(value):
            texts.append(_problem(position, name, f"{shown(value)} is text, not a number"))
        else:
            problems.append(_problem(position, name, message))
    return values.astype(object), problems or texts


def _non_finite(value: float) -> str:
    """Why a NaN or infinite number cannot be sent (a file's empty cell reads as NaN)."""
    return "value is missing (NaN)" if math.isnan(value) else f"{value} is not a finite number"


def _is_number_text(value: Any) -> bool:
    """Whether ``value`` is a string that reads as a finite number (``"110"``, ``" 2.5"``)."""
    if not isinstance(value, str):
        return False
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _check_value(value: Any, kind: str) -> str | None:
    """Return why ``value`` does not fit the parameter type ``kind``, or None when it does.

    The reason quotes the value (escaped and truncated: see
    :func:`~airflow_provider.api.identifiers.shown`).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "value is missing"
    if kind == "numeric":
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)
        )
        if not ok:
            return f"{shown(value)} is not a number"
        return None if math.isfinite(float(value)) else f"{value} is not a finite number"
    if kind == "integer":
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
        return None if ok else f"{shown(value)} is not an integer"
    if kind == "logical":
        if isinstance(value, (bool, np.bool_)):
            return None
        return f"{shown(value)} is not a logical (true or false)"
    if kind == "character":
        return None if isinstance(value, str) else f"{shown(value)} is not a string"
    return _check_json(value)


def _check_json(value: Any) -> str | None:
    """Composite values (vector, matrix, data.frame) must be plain, finite JSON."""
    try:
        json.dumps(to_builtin(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"{type(value).__name__} value is not JSON-serialisable: {shown(str(exc), 120)}"
    return None


def to_builtin(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    return value
