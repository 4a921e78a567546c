"""The CSV and JSON Lines tables are written a slice of rows at a time, byte for byte what
rendering the whole table at once writes."""

from __future__ import annotations

import io
import math
from typing import Any

import msgspec
import pandas as pd
import pytest

from airflow_provider.api import ExecutionResult
from airflow_provider.outputs import OutputFormat, OutputsTable, RenderedTable, formats

TRICKY_TEXT = [
    'say "hi", then leave',
    "two\nlines",
    "carriage\r\nreturn",
    "comma, separated",
    "",
    None,
    "unicode: é ß 漢字 🙂",
    "'single' and \"double\"",
    " leading and trailing ",
    "tab\tinside",
]


def tricky_table(rows: int = 60) -> pd.DataFrame:
    """Quotes, newlines, unicode, missing values, NaN, 64-bit integers, JSON text, inputs."""
    results = []
    for i in range(rows):
        results.append(
            ExecutionResult(
                i % 7 != 3,
                error_message=None if i % 7 != 3 else f'failed: "row {i}"\nsee log',
                output_parameters={
                    "text": TRICKY_TEXT[i % len(TRICKY_TEXT)],
                    "big": [2**63 - 1, -(2**63), None, 0, 2**53 + 1][i % 5],
                    "ratio": [1 / 3, math.nan, None, 1e300, -0.0, 5e-324][i % 6],
                    "flag": [True, False, None][i % 3],
                    "vector": [i, {"k": "v\n"}, "é"],
                },
            )
        )
    table = OutputsTable(
        ["text", "big", "ratio", "flag", "vector"], output_types={"vector": "vector"}
    )
    table.add(results)
    inputs = pd.DataFrame(
        {
            "name": [TRICKY_TEXT[(i + 3) % len(TRICKY_TEXT)] for i in range(rows)],
            "weight": [math.nan if i % 4 == 0 else i * 0.1 for i in range(rows)],
        }
    )
    return table.build(inputs)


def whole_csv(frame: pd.DataFrame) -> bytes:
    """The table as it was written before: rendered at once, as one string."""
    return frame.to_csv(index=False).encode("utf-8")


def whole_jsonl(frame: pd.DataFrame) -> bytes:
    """The table as it was written before: every column converted first."""
    names = [str(name) for name in frame.columns]
    columns = [frame[name].astype(object).tolist() for name in frame.columns]
    encoder = msgspec.json.Encoder(enc_hook=formats._plain)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    return encoder.encode_lines(rows)


class RecordingHandle(io.BytesIO):
    """A binary file that remembers the size of each write."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def write(self, data: Any) -> int:
        self.sizes.append(len(data))
        return super().write(data)


def written(frame: pd.DataFrame, fmt: OutputFormat) -> RecordingHandle:
    handle = RecordingHandle()
    RenderedTable(frame, fmt).write(handle)
    return handle


@pytest.mark.parametrize("cells", [1, 9, 37, formats.RENDER_CELLS])
@pytest.mark.parametrize("fmt", [OutputFormat.CSV, OutputFormat.JSONL])
def test_slices_write_the_same_bytes_as_the_whole_table(
    monkeypatch: pytest.MonkeyPatch, cells: int, fmt: OutputFormat
) -> None:
    monkeypatch.setattr(formats, "RENDER_CELLS", cells)
    frame = tricky_table()
    expected = whole_csv(frame) if fmt is OutputFormat.CSV else whole_jsonl(frame)
    assert written(frame, fmt).getvalue() == expected


@pytest.mark.parametrize("fmt", [OutputFormat.CSV, OutputFormat.JSONL])
def test_an_empty_table_writes_what_it_wrote_before(fmt: OutputFormat) -> None:
    frame = tricky_table().iloc[:0]
    expected = whole_csv(frame) if fmt is OutputFormat.CSV else whole_jsonl(frame)
    assert written(frame, fmt).getvalue() == expected


@pytest.mark.parametrize("fmt", [OutputFormat.CSV, OutputFormat.JSONL])
def test_a_large_table_is_written_in_slices_not_one_string(
    monkeypatch: pytest.MonkeyPatch, fmt: OutputFormat
) -> None:
    monkeypatch.setattr(formats, "RENDER_CELLS", 1_000)
    frame = pd.concat([tricky_table()] * 50, ignore_index=True)  # 3,000 rows of 10 columns
    handle = written(frame, fmt)
    total = len(handle.getvalue())
    assert len(handle.sizes) == 30  # 100 rows a slice
    assert max(handle.sizes) < total / 20
