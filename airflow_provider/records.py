"""Reading records, checking them against a service's inputs, and encoding the batch body.

A batch body is a JSON array with one object per row, mapping input names to values. Records
come from a DataFrame, a list of dicts, or a CSV / TSV / Parquet / JSON Lines file on any storage
that ``ObjectStoragePath`` reaches. Problems are reported before anything is sent, naming the row
(0-based, the index the server will use) and the column, so that nothing is half-submitted.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider.api import ParameterDefinition
from airflow_provider.api.identifiers import shown
from airflow_provider.exceptions import MrsDeployRecordsError

RecordsSource = Union[pd.DataFrame, Sequence[Mapping[str, Any]], str, "os.PathLike[str]"]

#: File suffixes and the reader each selects.
FORMAT_BY_SUFFIX = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
SUPPORTED_FORMATS = ("csv", "tsv", "parquet", "jsonl")

#: How many offending cells an error quotes before summarising the rest.
MAX_REPORTED_PROBLEMS = 5

#: Rows encoded per chunk of the request body; bounds the memory the encoder holds at once.
ENCODE_CHUNK_ROWS = 20_000

#: ``DataFrame.attrs`` keys under which :func:`load_records` notes where the rows came from,
#: so that :func:`prepare_records` can name it (the frame is all it is given).
SOURCE_ATTR = "mrsdeploy_records_source"
ROWS_ATTR = "mrsdeploy_records_rows"

#: How rows are numbered in messages, for records that did not come from a file.
ROW_NUMBERING = "rows are counted from 0, in the order given, as the server numbers them"


@dataclass(frozen=True)
class PreparedRecords:
    """Records reduced to the service's inputs, in input order, checked and ready to encode."""

    frame: pd.DataFrame
    dropped_columns: tuple[str, ...]

    @property
    def row_count(self) -> int:
        """Number of rows (the batch's ``totalItemCount``)."""
        return len(self.frame)


def infer_format(path: str) -> str:
    """Pick the reader from the file suffix (``.csv.gz`` style compression suffixes allowed)."""
    name = path.lower()
    for compression in (".gz", ".bz2", ".zst", ".xz"):
        if name.endswith(compression):
            name = name[: -len(compression)]
    for suffix, fmt in FORMAT_BY_SUFFIX.items():
        if name.endswith(suffix):
            return fmt
    raise MrsDeployRecordsError(
        f"cannot tell the format of {path!r} from its suffix; pass records_format as one of "
        f"{', '.join(SUPPORTED_FORMATS)}"
    )


def read_records_file(
    path: str | os.PathLike[str], records_format: str | None = None
) -> pd.DataFrame:
    """Read a records file through ``ObjectStoragePath`` (local paths and any fsspec scheme)."""
    from airflow.sdk import ObjectStoragePath

    location = ObjectStoragePath(os.fspath(path))
    fmt = (records_format or infer_format(str(location))).lower()
    if fmt not in SUPPORTED_FORMATS:
        raise MrsDeployRecordsError(
            f"unsupported records_format {fmt!r}; use one of {', '.join(SUPPORTED_FORMATS)}"
        )
    compression = "infer" if fmt != "parquet" else None
    if not location.exists():
        raise MrsDeployRecordsError(f"records file {str(location)!r} does not exist")
    with location.open("rb") as handle:
        if fmt == "parquet":
            return pd.read_parquet(handle)
        if fmt == "jsonl":
            return pd.read_json(handle, lines=True, compression=_compression(str(location)))
        del compression
        return pd.read_csv(
            handle, sep="\t" if fmt == "tsv" else ",", compression=_compression(str(location))
        )


def _compression(name: str) -> str | None:
    lowered = name.lower()
    for suffix, kind in ((".gz", "gzip"), (".bz2", "bz2"), (".zst", "zstd"), (".xz", "xz")):
        if lowered.endswith(suffix):
            return kind
    return None


def load_records(source: RecordsSource, records_format: str | None = None) -> pd.DataFrame:
    """Turn any supported records source into a DataFrame (row position = batch index).

    The frame's ``attrs`` say where the rows came from (see :data:`SOURCE_ATTR`), for the
    messages of :func:`prepare_records`.
    """
    if isinstance(source, pd.DataFrame):
        return _noted(source.reset_index(drop=True), "the records DataFrame")
    if isinstance(source, (str, os.PathLike)):
        frame = read_records_file(source, records_format).reset_index(drop=True)
        fmt = (records_format or infer_format(os.fspath(source))).lower()
        first = "first line after the header" if fmt in ("csv", "tsv") else "first record"
        return _noted(
            frame,
            f"records file {shown(os.fspath(source), 200)}",
            f"rows are counted from 0, as the server numbers them: row 0 is the file's {first}",
        )
    if isinstance(source, Sequence):
        for position, row in enumerate(source):
            if not isinstance(row, Mapping):
                raise MrsDeployRecordsError(
                    f"record {position} is a {type(row).__name__}, expected a mapping of "
                    "input names to values"
                )
        return _noted(pd.DataFrame.from_records(list(source)), "the records list")
    raise MrsDeployRecordsError(
        "records must be a DataFrame, a list of dicts or a file path/URL, "
        f"got {type(source).__name__}"
    )


def _noted(frame: pd.DataFrame, source: str, rows: str = ROW_NUMBERING) -> pd.DataFrame:
    """``frame`` with where its rows came from, and how they are numbered, in its attrs."""
    frame.attrs[SOURCE_ATTR] = source
    frame.attrs[ROWS_ATTR] = rows
    return frame


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
        json.dumps(_to_builtin(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"{type(value).__name__} value is not JSON-serialisable: {shown(str(exc), 120)}"
    return None


def _to_builtin(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_builtin(v) for v in value]
    return value


def iter_encoded_records(
    prepared: PreparedRecords, chunk_rows: int = ENCODE_CHUNK_ROWS
) -> Iterator[bytes]:
    """Yield the JSON array body in chunks of ``chunk_rows`` rows, never as one huge string.

    Encoding works a column at a time (see :func:`encode_rows`): no Python dict is built per
    row, and memory is bounded by one chunk whatever the number of rows. Floats are written in
    their shortest form that reads back to the same double, integers stay integers.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    frame = prepared.frame
    columns = [column_values(frame.iloc[:, position]) for position in range(frame.shape[1])]
    names = [str(name) for name in frame.columns]
    yield b"["
    for start in range(0, len(frame), chunk_rows):
        if start:
            yield b","
        if names:
            yield encode_rows(names, [values[start : start + chunk_rows] for values in columns])
        else:  # a service without inputs: one empty object per row
            yield b",".join([b"{}"] * min(chunk_rows, len(frame) - start))
    yield b"]"


def column_values(series: pd.Series) -> np.ndarray:
    """A column as a numpy array: numeric and boolean dtypes as is, anything else as objects."""
    array = series.to_numpy()
    if array.dtype.kind in "biuf":
        return array
    return series.to_numpy(dtype=object)


def encode_rows(names: Sequence[str], columns: Sequence[np.ndarray]) -> bytes:
    """Encode rows given column-wise as JSON objects joined by commas (no enclosing brackets).

    Each column becomes one Arrow binary array of tokens ``<value>,`` (the last column's are
    ``<value>},``); the row objects are then one element-wise concatenation of the key prefixes
    and those arrays, done in C++. Numeric and boolean columns are encoded by msgspec as a
    single JSON array, whose values cannot contain commas, so splitting it at its commas gives
    the tokens without a Python object per value; other columns (strings, vectors, matrices,
    data frames) are encoded value by value.

    :param names: column names, the keys of every row object (at least one).
    :param columns: one array per name, all of the same length (at least one row).
    """
    rows = len(columns[0])
    parts: list[Any] = []
    last = len(names) - 1
    for position, (name, values) in enumerate(zip(names, columns, strict=True)):
        key = (b"{" if position == 0 else b"") + _ENCODER.encode(str(name)) + b":"
        parts.append(pa.scalar(key, pa.large_binary()))
        parts.append(_column_tokens(values, b"}," if position == last else b","))
    joined = pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.large_binary()))
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)
    begin, end = int(offsets[joined.offset]), int(offsets[joined.offset + rows])
    data = joined.buffers()[2]
    return data[begin : end - 1].to_pybytes()  # drop the comma after the last row


def _column_tokens(values: np.ndarray, terminator: bytes) -> pa.Array:
    """One column's values as JSON tokens, each followed by ``terminator``."""
    rows = len(values)
    if values.dtype.kind in "biuf":
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            # prepare_records rejects these; msgspec would quietly write null.
            raise MrsDeployRecordsError("records hold NaN or inf; run prepare_records first")
        # msgspec writes floats in shortest round-trip form, ints as ints, bools as true/false.
        text = _ENCODER.encode(values.tolist())
        data = text[1:-1] + b","
        if terminator != b",":
            data = data.replace(b",", terminator)
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _COMMA) + 1
        if len(ends) != rows:  # cannot happen for numbers; guard the assumption anyway
            raise MrsDeployRecordsError("internal error: numeric column did not split per row")
        offsets = np.empty(rows + 1, dtype=np.int64)
        offsets[0] = 0
        offsets[1:] = ends
    else:
        tokens = [_encode_value(value) + terminator for value in values.tolist()]
        data = b"".join(tokens)
        offsets = np.zeros(rows + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, tokens), dtype=np.int64, count=rows), out=offsets[1:])
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _encode_hook(value: Any) -> Any:
    """Let msgspec encode numpy values (arrays, scalars, numpy strings) inside composites."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise NotImplementedError(f"cannot encode {type(value).__name__} as JSON")


_ENCODER = msgspec.json.Encoder(enc_hook=_encode_hook)
_COMMA = ord(",")


def _encode_value(value: Any) -> bytes:
    """One value as JSON; anything msgspec declines goes through the standard library."""
    if isinstance(value, str):
        value = str(value)  # numpy.str_ and other subclasses
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError, NotImplementedError, OverflowError):
        # e.g. lone surrogates in a string, tuple-keyed mappings: json.dumps escapes or
        # rejects them the way it always has.
        return json.dumps(_to_builtin(value), allow_nan=False, separators=(",", ":")).encode(
            "utf-8"
        )


def encode_records(prepared: PreparedRecords) -> bytes:
    """The whole batch body as bytes (one JSON array of row objects)."""
    return b"".join(iter_encoded_records(prepared))
