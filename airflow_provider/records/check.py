"""Checking records against a service's inputs before anything is sent: every problem names
the row (0-based, the index the server will use), the column and the value, so that nothing
is half-submitted."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from airflow_provider.api import ParameterDefinition
from airflow_provider.api.identifiers import shown
from airflow_provider.exceptions import MrsDeployRecordsError
from airflow_provider.records.decimals import decimals_as_numbers, holds_decimals
from airflow_provider.records.read import (
    HEADER_DUPLICATES_ATTR,
    ROW_NUMBERING,
    ROWS_ATTR,
    SOURCE_ATTR,
)

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
    check_unique_inputs(
        list(frame.columns), expected, named_twice=frame.attrs.get(HEADER_DUPLICATES_ATTR, ())
    )
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
    wrong_kinds: list[str] = []
    for parameter in inputs:
        column, column_problems = _check_column(frame[parameter.name], parameter)
        converted[parameter.name] = column
        problems.extend(column_problems)
        if column_problems:
            wrong_kinds.append(parameter.type.lower())
    if problems:
        quoted = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(quoted)
        suffix = f" (and {more} more)" if more > 0 else ""
        raise MrsDeployRecordsError(
            f"{source} cannot be sent as JSON to the service: "
            + "; ".join(quoted)
            + suffix
            + f" ({numbering}). Fix these values or drop their rows: "
            + _type_hint(wrong_kinds)
        )
    prepared = pd.DataFrame(converted, index=pd.RangeIndex(len(frame)))
    return PreparedRecords(prepared, dropped)


#: What each input type takes, for the closing hint of a records error.
_TAKES = {
    "numeric": "a numeric input takes only numbers",
    "integer": "an integer input takes only whole numbers within the 64-bit range",
    "logical": "a logical input takes only true or false",
    "character": "a character input takes only strings",
}


def _type_hint(kinds: Sequence[str]) -> str:
    """The closing hint of a records error: what the types of the wrong columns take (only
    those: a character column of digits needs no advice about numbers), and what JSON lacks."""
    takes = list(dict.fromkeys(_TAKES[kind] for kind in kinds if kind in _TAKES))
    json_lacks = "JSON has no NaN, inf or missing values."
    return ", ".join([*takes, f"and {json_lacks}"]) if takes else json_lacks


def text_inputs(inputs: Sequence[ParameterDefinition]) -> tuple[str, ...]:
    """The names of the ``character`` inputs: the columns a CSV or TSV file must be read as
    text, so that a value that looks like a number (a zip code ``007``) is sent as written.

    :param inputs: the service's input definitions.
    """
    return tuple(p.name for p in inputs if p.type.lower() == "character")


def check_unique_inputs(
    columns: Sequence[Any], expected: Sequence[str], named_twice: Collection[str] = ()
) -> None:
    """Refuse records where an input's name heads two columns: which one to send would be a
    guess (pandas would hand the check both, as a frame). Names are compared as text, as they
    are sent: the labels ``1`` and ``"1"`` are the same key.

    Duplicates among the columns the service does not take are dropped with them.

    :param columns: the records' column labels.
    :param expected: the service's input names.
    :param named_twice: names the records file's header gives more than one column (the
        reader renamed or dropped the others).
    :raises MrsDeployRecordsError: an input name appears more than once.
    """
    in_header = [name for name in expected if name in named_twice]
    if in_header:
        raise MrsDeployRecordsError(
            f"the records file's header names {in_header} more than once; the service takes "
            "each input once, and which column to send would be a guess. Rename or drop the "
            "extra columns before submitting."
        )
    counts = Counter(str(column) for column in columns)
    duplicated = [name for name in expected if counts[name] > 1]
    if duplicated:
        labels = [column for column in columns if str(column) in duplicated]
        raise MrsDeployRecordsError(
            f"records have more than one column named {duplicated} (the labels {labels}, "
            "compared as text); the service takes each input once. Rename or drop the extra "
            "columns before submitting."
        )


def _problem(row: int, column: str, message: str) -> str:
    return f"row {row}, column {column!r}: {message}"


def _check_column(series: pd.Series, parameter: ParameterDefinition) -> tuple[pd.Series, list[str]]:
    """Validate one column for its declared type; return it converted to JSON-ready values."""
    name, kind = parameter.name, parameter.type.lower()
    values = series.reset_index(drop=True)
    if kind in ("numeric", "integer") and holds_decimals(values):
        # Exact ints and floats, checked below value by value: as an Arrow decimal column
        # they would be sent as JSON strings, or rounded through float64 for an integer.
        values = decimals_as_numbers(values)
    if (
        kind in ("numeric", "integer")
        and pd.api.types.is_numeric_dtype(values.dtype)
        and not pd.api.types.is_bool_dtype(values.dtype)
        # Complex numbers count as numeric to pandas; JSON has none: checked value by value.
        and not pd.api.types.is_complex_dtype(values.dtype)
    ):
        array = values.to_numpy(dtype="float64", na_value=np.nan)
        bad = np.flatnonzero(~np.isfinite(array))
        problems = [_problem(int(i), name, _non_finite(array[i])) for i in bad]
        if kind == "integer" and not bad.size:
            return _check_integers(values, array, name)
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


#: The range an ``integer`` input's values must lie in: the 64-bit signed integers. A float
#: beyond it has no int64 to become (numpy's cast gives -2**63 for all of them), and the
#: service is given whole numbers it can hold.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _check_integers(values: pd.Series, array: np.ndarray, name: str) -> tuple[pd.Series, list[str]]:
    """An ``integer`` input's finite numeric column (``array`` holds it as floats): every value
    must be whole and fit 64 bits; floats that do are sent as integers."""
    if pd.api.types.is_signed_integer_dtype(values.dtype):
        return values, []  # 64 bits at most: every value fits
    if pd.api.types.is_unsigned_integer_dtype(values.dtype):
        # Compared as integers: a float rounds 2**63 - 1 up to 2**63.
        large = np.flatnonzero(values.to_numpy(dtype="uint64") > INT64_MAX)
        return values, [_problem(int(i), name, _outside_int64(values.iloc[i])) for i in large]
    fractional = array != np.floor(array)
    # 2.0**63 is the first float beyond INT64_MAX; INT64_MIN is a float exactly.
    outside = (array < INT64_MIN) | (array >= 2.0**63)
    # From 2**53 on, a float cannot tell neighbouring integers apart: 9007199254740993 read
    # into a float column (one value with a decimal point beside it) became ...992.
    rounded = ~outside & (np.abs(array) >= _EXACT_IN_FLOAT)
    wrong = np.flatnonzero(fractional | outside | rounded)
    if not wrong.size:
        return pd.Series(array.astype("int64")), []
    return values, [_integer_problem(int(i), name, array[i]) for i in wrong]


#: The first whole number a float64 may hold only rounded (2**53 + 1 reads as 2**53).
_EXACT_IN_FLOAT = 2.0**53


def _integer_problem(row: int, name: str, value: float) -> str:
    """Why the float ``value`` of an ``integer`` input cannot be sent as an integer."""
    if value != math.floor(value):
        return _problem(row, name, f"{value} is not an integer")
    if not INT64_MIN <= value < 2.0**63:
        return _problem(row, name, _outside_int64(value))
    return _problem(
        row,
        name,
        f"{int(value)} may have been rounded: the column holds floating-point numbers (a "
        "value with a decimal point beside it made the whole column float), which keep whole "
        "numbers exactly only below 2**53; give every value of the column as an integer",
    )


def _outside_int64(value: object) -> str:
    return f"{value} is outside the 64-bit integer range ({INT64_MIN} to {INT64_MAX})"


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
        if not ok:
            return f"{shown(value)} is not an integer"
        return None if INT64_MIN <= int(value) <= INT64_MAX else _outside_int64(value)
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
