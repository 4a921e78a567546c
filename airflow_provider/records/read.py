"""Reading records: a DataFrame, a list of dicts, or a CSV / TSV / Parquet / JSON Lines file on
any storage that ``ObjectStoragePath`` reaches, into one DataFrame whose row positions are the
batch indexes the server will use. Where the rows came from is noted on the frame, so that
later messages can name it."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import lzma
import os
import zlib
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Union

import pandas as pd
import pyarrow as pa

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

#: ``DataFrame.attrs`` keys under which :func:`load_records` notes where the rows came from,
#: so that :func:`prepare_records` can name it (the frame is all it is given).
SOURCE_ATTR = "mrsdeploy_records_source"
ROWS_ATTR = "mrsdeploy_records_rows"
#: Names a records file gives more than one column (its header, or a JSON Lines record's
#: keys): the reader keeps only one of them, so the check must be told.
HEADER_DUPLICATES_ATTR = "mrsdeploy_records_duplicated_names"

#: How rows are numbered in messages, for records that did not come from a file.
ROW_NUMBERING = "rows are counted from 0, in the order given, as the server numbers them"


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
    path: str | os.PathLike[str],
    records_format: str | None = None,
    text_columns: Collection[str] = (),
) -> pd.DataFrame:
    """Read a records file through ``ObjectStoragePath`` (local paths and any fsspec scheme).

    :param path: the file's path or URL.
    :param records_format: csv, tsv, parquet or jsonl; None to tell it from the suffix.
    :param text_columns: columns a CSV or TSV reader keeps as text, as written (a ``character``
        input's ``007`` stays ``"007"``, where the reader would make it the number 7 and lose
        the zeros). Parquet and JSON Lines carry their types, so it does not apply to them.
    :raises MrsDeployRecordsError: the file is missing, a directory or cannot be read as its
        format; the message names the file and what to do.
    """
    from airflow.sdk import ObjectStoragePath

    text = os.fspath(path)
    if text.lstrip()[:1] in ("[", "{"):
        # Rows an upstream task returned, rendered to text by a template ("{{ ti.xcom_pull(...)
        # }}"): not a path at all.
        raise MrsDeployRecordsError(
            f"records {shown(text, 120)} look like rows rendered to text by a template, not a "
            "file's path: pass the upstream task's output itself (records=upstream.output), or "
            "set render_template_as_native_obj=True on the DAG"
        )
    location = ObjectStoragePath(text)
    fmt = (records_format or infer_format(str(location))).lower()
    if fmt not in SUPPORTED_FORMATS:
        raise MrsDeployRecordsError(
            f"unsupported records_format {fmt!r}; use one of {', '.join(SUPPORTED_FORMATS)}"
        )
    where = f"records file {shown(str(location), 200)}"
    if not location.exists():
        raise MrsDeployRecordsError(f"{where} does not exist")
    if location.is_dir():
        raise MrsDeployRecordsError(
            f"{where} is a directory, not a file; give the path of one {fmt} file (a "
            "directory of parts is not read as one table)"
        )
    try:
        return _read_format(location, fmt, text_columns)
    except _UNREADABLE as exc:
        why = _why_unreadable(exc, fmt, _compression(str(location)))
        raise MrsDeployRecordsError(f"{where} {why}") from exc


#: What the readers raise for a file that is not what its format says; a library's message
#: alone names neither the file nor the fix (see :func:`_why_unreadable`).
_UNREADABLE = (
    UnicodeDecodeError,
    pd.errors.EmptyDataError,
    pd.errors.ParserError,
    pa.ArrowInvalid,
    # Damaged or mislabelled compression (gzip's BadGzipFile and bz2's are OSErrors, a cut
    # stream an EOFError), a damaged Parquet page (OSError), a missing decompressor.
    OSError,
    EOFError,
    lzma.LZMAError,
    zlib.error,
    ImportError,
)


def _why_unreadable(exc: Exception, fmt: str, compression: str | None) -> str:
    """What is wrong with a file whose reader raised ``exc``, and how to fix it."""
    detail = shown(str(exc), 160)
    if isinstance(exc, UnicodeDecodeError):
        # The position in the message counts from the start of the reader's buffer, not of
        # the file: the offending bytes say more.
        bad = bytes(exc.object[exc.start : exc.end])
        return (
            f"is not UTF-8 text (it holds {bad!r}, which UTF-8 cannot decode); save it as "
            "UTF-8 (spreadsheet programs and older tools often write Latin-1 or Windows-1252)"
        )
    if isinstance(exc, pd.errors.EmptyDataError):
        return (
            "is empty: it has not even a header line naming the columns. Check the step that "
            "produced the file"
        )
    if isinstance(exc, ImportError):
        return (
            f"cannot be decompressed here ({detail}); install the package named there on "
            "every worker, or give the file uncompressed or compressed with gzip"
        )
    if isinstance(exc, (EOFError, lzma.LZMAError, zlib.error)) or (
        isinstance(exc, OSError) and compression is not None
    ):
        return (
            f"is not readable as {compression or 'compressed'} data ({type(exc).__name__}: "
            f"{detail}); it may be cut short, damaged, or not compressed as its suffix says "
            "(then rename it)"
        )
    if isinstance(exc, OSError) and fmt != "parquet":
        return f"could not be read ({type(exc).__name__}: {detail})"
    if isinstance(exc, (pa.ArrowInvalid, OSError)):
        return (
            f"is not a readable Parquet file ({detail}); it may be empty, cut short while "
            "being written, or in another format (then pass records_format)"
        )
    return (
        f"is not well-formed {fmt.upper()} ({detail}); check its quoting, and that every line "
        "has as many fields as the header"
    )


def _read_format(location: Any, fmt: str, text_columns: Collection[str]) -> pd.DataFrame:
    """Read ``location`` (an ``ObjectStoragePath`` known to be a file) as ``fmt``."""
    compression = _compression(str(location))
    if fmt == "jsonl":
        # The standard library's decoder, a line at a time, into the frame a list of the same
        # rows gives: pandas' JSON reader rounds some floats, reads quoted digits as numbers
        # and date-like text as timestamps, so the same rows would be sent differently (or be
        # refused differently) from a file than from a list. It also holds the whole text of
        # the file besides the rows; this holds one line.
        with location.open("rb", compression=compression) as lines:
            return frame_of_rows(_json_lines(lines, str(location)))
    if fmt == "parquet":
        if compression is not None:
            # Parquet compresses its own pages; a whole file compressed again (.parquet.gz)
            # cannot be read in place: the reader seeks to the footer at the end.
            with location.open("rb", compression=compression) as handle:
                return pd.read_parquet(io.BytesIO(handle.read()))
        with location.open("rb") as handle:
            return pd.read_parquet(handle)
    sep = "\t" if fmt == "tsv" else ","
    with location.open("rb", compression=compression) as handle:
        header = _header(handle, sep)
    with location.open("rb") as handle:
        frame = pd.read_csv(
            handle, sep=sep, compression=compression, dtype=dict.fromkeys(text_columns, str)
        )
    _refuse_unnamed_leading_fields(frame, header, f"records file {shown(str(location), 200)}")
    frame.attrs[HEADER_DUPLICATES_ATTR] = sorted(
        {name for name in header if header.count(name) > 1}
    )
    if fmt == "tsv":
        _refuse_joined_lines(frame, f"records file {shown(str(location), 200)}")
    return frame


def _header(handle: Any, sep: str) -> list[str]:
    """The names a CSV or TSV file's first line gives, as written: pandas renames a repeated
    name (``x``, ``x.1``), and the second column would then be dropped as not an input."""
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    try:
        return next(csv.reader(text, delimiter=sep), [])
    finally:
        text.detach()  # the caller closes the file


def _refuse_unnamed_leading_fields(frame: pd.DataFrame, header: list[str], where: str) -> None:
    """Refuse a CSV or TSV file whose data lines have more fields than its header.

    pandas takes the extra leading fields for row labels and the records dropped them, so the
    other values moved to the left under the header's names: ``hp,wt`` over ``1,2,3,4`` was
    sent as hp 3, wt 4. One extra field may be R's row names (``write.table`` writes them
    without a header), which cannot be told from a line with a field too many.
    """
    if isinstance(frame.index, pd.RangeIndex):
        return
    raise MrsDeployRecordsError(
        f"{where} is not well-formed: its data lines have {len(header) + frame.index.nlevels} "
        f"fields and its header names {len(header)}, so the values do not line up with the "
        "names. Give every column a name in the header; if the first field is R's row names, "
        "write the file with row.names = FALSE (or with write.csv, which names that column)"
    )


def _refuse_joined_lines(frame: pd.DataFrame, where: str) -> None:
    """Refuse a TSV file in which a field holds a line break.

    The reader follows CSV's quoting, as R's ``write.table`` writes tab-separated files: a
    field that starts with a quote runs to the next quote, across tabs and lines. In a plain
    TSV file (PostgreSQL's ``COPY``, most exports) a text such as ``"Best`` has no closing
    quote, so the lines after it were taken into one field and their rows silently lost.
    """
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
            continue
        joined = column.astype(str).str.contains("[\r\n]", regex=True, na=False).to_numpy()
        if joined.any():
            row = int(joined.argmax())
            raise MrsDeployRecordsError(
                f"{where}: row {row}, column {shown(str(name))} holds a line break "
                f"({shown(str(column.iloc[row]), 60)}): in this TSV file a field starting with "
                'a quote (") ran on to a later quote, taking the lines between into one row. '
                "Quote the fields that hold quotes, tabs or line breaks (doubling the quotes "
                "inside, as R's write.table does), or give the records as CSV, Parquet or JSON "
                "Lines"
            )


def _json_lines(lines: Iterable[bytes], where: str) -> list[dict[str, Any]]:
    """Each non-blank line of a JSON Lines file as a dict, naming the line of any that is not
    a JSON object (lines count from 1, as editors number them)."""
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_without_repeated_keys)
        except MrsDeployRecordsError as exc:  # a repeated key
            raise MrsDeployRecordsError(
                f"records file {shown(where, 200)}: line {number} {exc}"
            ) from None
        except UnicodeDecodeError as exc:
            raise MrsDeployRecordsError(
                f"records file {shown(where, 200)}: line {number} is not UTF-8 text ({exc}); "
                "save the file as UTF-8"
            ) from exc
        except ValueError as exc:
            raise MrsDeployRecordsError(
                f"records file {shown(where, 200)}: line {number} is not JSON ({exc})"
            ) from exc
        if not isinstance(row, dict):
            raise MrsDeployRecordsError(
                f"records file {shown(where, 200)}: line {number} is a JSON "
                f"{type(row).__name__}, expected an object of input names to values"
            )
        rows.append(row)
    return rows


def _without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refused when it repeats a key (``json`` keeps the last)."""
    row = dict(pairs)
    if len(row) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        repeated = next(key for key, n in counts.items() if n > 1)
        raise MrsDeployRecordsError(
            f"gives the key {shown(repeated)} more than once; a JSON reader keeps only the "
            "last, so which value to send would be a guess. Write each key once"
        )
    return row


def frame_of_rows(rows: list[Any]) -> pd.DataFrame:
    """``rows`` as a frame, typed as pandas infers them.

    A column holding a string that UTF-8 cannot encode, a lone surrogate (JSON may escape one
    as ``"\\udc80"``; Python makes them of undecodable bytes), is kept as Python objects, as in
    a DataFrame built with ``object`` columns: pandas' string type refuses such a string with a
    bare ``UnicodeEncodeError``, while the records' JSON carries it escaped.
    """
    try:
        return pd.DataFrame.from_records(rows)
    except UnicodeEncodeError:
        frame = pd.DataFrame(rows, dtype=object)
    for name in frame.columns:
        with contextlib.suppress(UnicodeEncodeError):  # else it stays object
            frame[name] = frame[name].infer_objects()
    return frame


def _compression(name: str) -> str | None:
    lowered = name.lower()
    for suffix, kind in ((".gz", "gzip"), (".bz2", "bz2"), (".zst", "zstd"), (".xz", "xz")):
        if lowered.endswith(suffix):
            return kind
    return None


def load_records(
    source: RecordsSource,
    records_format: str | None = None,
    text_columns: Collection[str] = (),
) -> pd.DataFrame:
    """Turn any supported records source into a DataFrame (row position = batch index).

    The frame's ``attrs`` say where the rows came from (see :data:`SOURCE_ATTR`), for the
    messages of :func:`prepare_records`.

    :param source: a DataFrame, a list of dicts, or a file's path or URL.
    :param records_format: the file's format when its suffix does not tell.
    :param text_columns: for a CSV or TSV file, the columns to keep as text as written: the
        service's ``character`` inputs (see :func:`~airflow_provider.records.check.
        text_inputs`). Other sources carry their own types.
    """
    if isinstance(source, pd.DataFrame):
        return _noted(source.reset_index(drop=True), "the records DataFrame")
    if isinstance(source, (str, os.PathLike)):
        frame = read_records_file(source, records_format, text_columns)
        frame = frame.reset_index(drop=True)
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
        return _noted(frame_of_rows(list(source)), "the records list")
    raise MrsDeployRecordsError(
        "records must be a DataFrame, a list of dicts or a file path/URL, "
        f"got {type(source).__name__}"
    )


def _noted(frame: pd.DataFrame, source: str, rows: str = ROW_NUMBERING) -> pd.DataFrame:
    """``frame`` with where its rows came from, and how they are numbered, in its attrs."""
    frame.attrs[SOURCE_ATTR] = source
    frame.attrs[ROWS_ATTR] = rows
    return frame
