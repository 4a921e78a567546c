"""Table file formats, and rendering a table so that every value reads back exactly."""

from __future__ import annotations

import json
import math
from enum import Enum
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider.api import MrsDeployError
from airflow_provider.api.identifiers import LONE_SURROGATE
from airflow_provider.outputs.table import INPUT_PREFIX
from airflow_provider.safe_text import printable

if TYPE_CHECKING:
    import pandas as pd

TABLE_STEM = "outputs"
#: About how many cells CSV and JSON Lines render at a time: the text of one such slice is
#: all the memory writing the table adds, whatever its size.
RENDER_CELLS = 200_000


class OutputFormat(str, Enum):
    """File format of the outputs table."""

    PARQUET = "parquet"
    CSV = "csv"
    JSONL = "jsonl"

    @classmethod
    def parse(cls, value: str | OutputFormat) -> OutputFormat:
        """Accept the enum or its name in any case."""
        try:
            return cls(str(getattr(value, "value", value)).lower())
        except ValueError:
            choices = ", ".join(f.value for f in cls)
            raise MrsDeployError(f"unknown output_format {value!r}; use one of {choices}") from None

    @property
    def table_name(self) -> str:
        """The table's file name under the destination."""
        return f"{TABLE_STEM}.{self.value}"


def _refuse_unencodable_text(table: pd.DataFrame) -> None:
    """Refuse a string CSV cannot hold as UTF-8, before the destination is touched.

    A lone surrogate can only be in a column of Python objects (pandas' string type refuses
    it): text of the records put beside the outputs, or a server's text. JSON escapes it; CSV
    has no escape.
    """
    for name in table.columns:
        column = table[name]
        if column.dtype != object:
            continue
        for position, value in enumerate(column.tolist()):
            if isinstance(value, str) and LONE_SURROGATE.search(value) is not None:
                row = table["index"].iloc[position] if "index" in table.columns else position
                source = (
                    "fix the text of the records"
                    if str(name).startswith(INPUT_PREFIX)
                    else "have the service return text that UTF-8 can encode"
                )
                raise MrsDeployError(
                    f"row {row} of column {name!r} holds a lone surrogate "
                    f"({printable(value, 80)}), which CSV cannot store as UTF-8; nothing was "
                    f"written. Use output_format='jsonl', which keeps it escaped, or {source}."
                )


def _unquoted_carriage_return(text: str) -> bool:
    """Whether the CSV writer would leave a carriage return in ``text`` unquoted: it quotes a
    field only for the characters of its line terminator, so one with a ``\\n`` is quoted."""
    return "\r" in text and "\n" not in text


def _holds_carriage_return(table: pd.DataFrame) -> bool:
    """Whether a column name or a text cell holds a carriage return that ``\\n`` lines would
    leave unquoted (see :func:`_unquoted_carriage_return`).

    Every reader takes such a ``\\r`` for a line break, cutting the row in two: a
    service's text, or a ``character`` input a repair must re-send as it was.
    """
    if any(_unquoted_carriage_return(str(name)) for name in table.columns):
        return True
    for position in range(table.shape[1]):
        column = table.iloc[:, position]
        if column.dtype.kind == "O" and any(
            isinstance(value, str) and _unquoted_carriage_return(value) for value in column.tolist()
        ):
            return True
    return False


def _escaped_line(row: dict[str, Any]) -> bytes:
    """One JSON Lines row by the standard encoder (ASCII, every string escaped as needed),
    with what msgspec writes for the values it takes: ``null`` for NaN and infinities."""
    return (
        json.dumps(_json_ready(row), allow_nan=False, separators=(",", ":")).encode("ascii") + b"\n"
    )


def _json_ready(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    to_list = getattr(value, "tolist", None)
    if callable(to_list):  # numpy arrays and scalars
        return _json_ready(to_list())
    plain = _plain(value)
    if plain is None or isinstance(plain, (str, int, float)):
        return _json_ready(plain)
    iso = getattr(plain, "isoformat", None)  # what msgspec writes for dates and times
    return iso() if callable(iso) else str(plain)


def _plain(value: Any) -> Any:
    """A value pandas holds (missing markers, timestamps, numpy scalars) as a JSON value."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


class RenderedTable:
    """A table checked and converted for its format before the destination is touched.

    Parquet is converted to Arrow here, so a value Arrow refuses fails the task before any
    file is downloaded or replaced; CSV and JSON Lines hold only JSON-like values by now.
    Floats round-trip bit for bit in every format: Parquet stores them as they are, CSV and
    JSON Lines write the shortest text that reads back as the same float.
    """

    def __init__(self, table: pd.DataFrame, output_format: OutputFormat) -> None:
        self.output_format = output_format
        self.rows = len(table)
        self._table = table
        self._arrow: Any = None
        #: CSV line ends: ``\r\n`` when some text holds a carriage return the writer would
        #: otherwise leave unquoted (see :func:`_holds_carriage_return`); else pandas' default.
        self._csv_line_end: str | None = None
        if output_format is OutputFormat.CSV:
            _refuse_unencodable_text(table)
            if _holds_carriage_return(table):
                self._csv_line_end = "\r\n"
        if output_format is OutputFormat.PARQUET:
            import pyarrow as pa

            try:
                self._arrow = pa.Table.from_pandas(table, preserve_index=False)
            except (pa.ArrowException, TypeError, ValueError) as exc:
                raise MrsDeployError(
                    f"the outputs table cannot be written as Parquet: {exc}; nothing was "
                    "written. Try output_format='jsonl', which keeps any JSON value."
                ) from exc

    @property
    def name(self) -> str:
        """The table's file name under the destination."""
        return self.output_format.table_name

    def write(self, handle: BinaryIO) -> None:
        """Write the table to an open binary file."""
        if self._arrow is not None:
            import pyarrow.parquet as pq

            pq.write_table(self._arrow, handle)
        elif self.output_format is OutputFormat.CSV:
            self._write_csv(handle)
        else:
            self._write_jsonl(handle)

    @property
    def _step(self) -> int:
        """Rows rendered at a time (see :data:`RENDER_CELLS`)."""
        return max(1, RENDER_CELLS // max(1, len(self._table.columns)))

    def _write_csv(self, handle: BinaryIO) -> None:
        """The header, then the rows a slice at a time: the same bytes as the whole table
        rendered at once (pandas renders each value on its own: every float as its shortest
        exact text, so CSV round-trips), without holding the whole text. Lines end in
        ``\\r\\n`` only when a text needs it quoted (see ``_csv_line_end``)."""
        step = self._step
        for start in range(0, max(self.rows, 1), step):
            part = self._table.iloc[start : start + step]
            text = part.to_csv(index=False, header=start == 0, lineterminator=self._csv_line_end)
            handle.write(text.encode("utf-8"))

    def _write_jsonl(self, handle: BinaryIO) -> None:
        """One JSON object per row, a slice of rows at a time; msgspec writes every float
        exactly (pandas keeps 15 significant digits at most)."""
        import msgspec

        names = [str(name) for name in self._table.columns]
        encoder = msgspec.json.Encoder(enc_hook=_plain)
        step = self._step
        for start in range(0, self.rows, step):
            part = self._table.iloc[start : start + step]
            columns = [part.iloc[:, i].astype(object).tolist() for i in range(len(names))]
            rows = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
            try:
                handle.write(encoder.encode_lines(rows))
            except UnicodeEncodeError:
                # A lone surrogate (in the records put beside the outputs), which msgspec
                # refuses: the standard encoder writes it escaped, and it reads back the same.
                handle.write(b"".join(_escaped_line(row) for row in rows))
