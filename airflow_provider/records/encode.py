"""Encoding checked records as the batch body: a JSON array with one object per row, mapping
input names to values, built a column at a time and yielded in chunks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider.exceptions import MrsDeployRecordsError
from airflow_provider.records.check import PreparedRecords, cut_records, to_builtin

#: Rows encoded per chunk of the request body; bounds the memory the encoder holds at once.
ENCODE_CHUNK_ROWS = 20_000


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
        return json.dumps(to_builtin(value), allow_nan=False, separators=(",", ":")).encode("utf-8")


def encode_records(prepared: PreparedRecords) -> bytes:
    """The whole batch body as bytes (one JSON array of row objects)."""
    return b"".join(iter_encoded_records(prepared))


class DigestingBody:
    """A batch body supplier that also fingerprints what it sends: call it for every attempt
    (as the hook does), and :attr:`digest` is the SHA-256 of the last body sent whole.

    :param supply: returns the body's chunks (e.g. ``partial(iter_encoded_records, part)``).
    """

    def __init__(self, supply: Callable[[], Iterable[bytes]]) -> None:
        self._supply = supply
        self.digest: str | None = None

    def __call__(self) -> Iterator[bytes]:
        hasher = hashlib.sha256()
        for chunk in self._supply():
            hasher.update(chunk)
            yield chunk
        self.digest = hasher.hexdigest()


def combine_digests(digests: Sequence[str]) -> str:
    """The fingerprint of a submission: one SHA-256 over its batches' body digests, in order."""
    return hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()


def records_fingerprint(prepared: PreparedRecords, row_counts: Sequence[int]) -> str:
    """The fingerprint Submit recorded, computed again from records: the records, checked
    against the same service, cut into batches of ``row_counts`` rows and encoded the same
    way, give the same fingerprint exactly when the same rows were sent.

    :raises MrsDeployRecordsError: the records do not hold the batches' rows.
    """
    if sum(row_counts) != prepared.row_count:
        raise MrsDeployRecordsError(
            f"the records hold {prepared.row_count} rows, but {sum(row_counts)} were submitted"
        )
    digests = []
    for part in cut_records(prepared, row_counts):
        hasher = hashlib.sha256()
        for chunk in iter_encoded_records(part):
            hasher.update(chunk)
        digests.append(hasher.hexdigest())
    return combine_digests(digests)
