"""Records that cannot be sent as they are fail with a records error that names the value, the
column or the file, and says what to do; never with a library's bare error, and never by
sending something else (an integer beyond 64 bits became -2**63)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_provider.api import ParameterDefinition
from airflow_provider.records import (
    MrsDeployRecordsError,
    encode_records,
    load_records,
    prepare_records,
)

N = [ParameterDefinition("n", "integer")]
HP_WT = [ParameterDefinition("hp", "numeric"), ParameterDefinition("wt", "numeric")]

# -- integer inputs ---------------------------------------------------------------------------

OUT_OF_RANGE = {
    "float 1e20": pd.DataFrame({"n": [1.0, 1e20]}),
    "float 2**63": pd.DataFrame({"n": [1.0, 2.0**63]}),
    "float -1e19": pd.DataFrame({"n": [1.0, -1e19]}),
    "uint64 2**64-1": pd.DataFrame({"n": np.array([1, 2**64 - 1], dtype="uint64")}),
    "UInt64 2**63": pd.DataFrame({"n": pd.array([1, 2**63], dtype="UInt64")}),
    "list 2**63": [{"n": 1}, {"n": 2**63}],
    "list 10**30": [{"n": 1}, {"n": 10**30}],
    "list -(2**63)-1": [{"n": 1}, {"n": -(2**63) - 1}],
}


@pytest.mark.parametrize("records", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_an_integer_beyond_64_bits_is_refused_naming_row_and_column(records: Any) -> None:
    with pytest.raises(MrsDeployRecordsError) as info:
        prepare_records(load_records(records), N)
    message = str(info.value)
    assert "row 1, column 'n': " in message and "outside the 64-bit integer range" in message
    assert "row 0" not in message


def test_an_integer_beyond_64_bits_in_a_csv_cell_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "counts.csv"
    path.write_text("n\n5\n1e20\n")
    with pytest.raises(MrsDeployRecordsError, match="row 1, column 'n': 1e\\+20 is outside"):
        prepare_records(load_records(str(path)), N)


EDGES = {
    "floats within 2**53": (
        pd.DataFrame({"n": [2.0**53 - 1, -(2.0**53 - 1), 3.0]}),
        [2**53 - 1, -(2**53 - 1), 3],
    ),
    "int64 extremes": (
        pd.DataFrame({"n": np.array([-(2**63), 2**63 - 1], dtype="int64")}),
        [-(2**63), 2**63 - 1],
    ),
    "uint64 2**63-1": (
        pd.DataFrame({"n": np.array([2**63 - 1, 0], dtype="uint64")}),
        [2**63 - 1, 0],
    ),
    "list extremes": ([{"n": -(2**63)}, {"n": 2**63 - 1}], [-(2**63), 2**63 - 1]),
    "integral floats": (pd.DataFrame({"n": [3.0, -4.0]}), [3, -4]),
}


@pytest.mark.parametrize(("records", "expected"), EDGES.values(), ids=EDGES.keys())
def test_integers_within_64_bits_are_sent_exactly(records: Any, expected: list[int]) -> None:
    body = encode_records(prepare_records(load_records(records), N))
    assert json.loads(body) == [{"n": value} for value in expected]


@pytest.mark.parametrize(
    "records",
    [
        [{"n": 9007199254740993}, {"n": 2.0}],  # a float beside it: pandas reads 2**53
        pd.DataFrame({"n": [-(2.0**63), 3.0]}),  # INT64_MIN, or a neighbour rounded to it
    ],
    ids=["list beside a float", "float -2**63"],
)
def test_whole_floats_from_2_to_53_on_are_refused_as_maybe_rounded(records: Any) -> None:
    """A float column cannot tell 2**53 + 1 from 2**53: sent, the id would silently change."""
    with pytest.raises(MrsDeployRecordsError, match=r"row 0, column 'n': -?\d+ may have been"):
        prepare_records(load_records(records), N)


def test_whole_numbers_beyond_2_to_53_in_a_csv_with_a_decimal_point_are_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("n\n9007199254740993\n2.0\n")
    with pytest.raises(MrsDeployRecordsError, match="give every value of the column as an"):
        prepare_records(load_records(str(path)), N)
    path.write_text("n\n9007199254740993\n2\n")  # integers only: read and sent exactly
    body = encode_records(prepare_records(load_records(str(path)), N))
    assert json.loads(body) == [{"n": 9007199254740993}, {"n": 2}]


def test_fractions_are_still_refused_beside_values_out_of_range() -> None:
    with pytest.raises(MrsDeployRecordsError) as info:
        prepare_records(load_records(pd.DataFrame({"n": [2.5, 1e20, 4.0]})), N)
    message = str(info.value)
    assert "row 0, column 'n': 2.5 is not an integer" in message
    assert "row 1, column 'n': 1e+20 is outside the 64-bit integer range" in message
    assert "row 2" not in message


# -- column names -----------------------------------------------------------------------------


def test_an_input_named_by_two_columns_is_refused_naming_it() -> None:
    frame = pd.DataFrame([[110, 120, 2.62]], columns=["hp", "hp", "wt"])
    with pytest.raises(MrsDeployRecordsError, match=r"more than one column named \['hp'\]"):
        prepare_records(load_records(frame), HP_WT)


def test_column_labels_are_compared_as_the_text_sent() -> None:
    frame = pd.DataFrame([[1, 2, 2.62]], columns=[7, "7", "wt"])
    inputs = [ParameterDefinition("7", "integer"), ParameterDefinition("wt", "numeric")]
    with pytest.raises(MrsDeployRecordsError) as info:
        prepare_records(load_records(frame), inputs)
    assert "more than one column named ['7'] (the labels [7, '7']" in str(info.value)


def test_duplicates_among_columns_the_service_does_not_take_are_dropped() -> None:
    frame = pd.DataFrame([[110, 2.62, "a", "b"]], columns=["hp", "wt", "model", "model"])
    prepared = prepare_records(load_records(frame), HP_WT)
    assert json.loads(encode_records(prepared)) == [{"hp": 110, "wt": 2.62}]
    assert prepared.dropped_columns == ("model", "model")


# -- files that cannot be read ----------------------------------------------------------------


def unreadable(tmp_path: Path, name: str, content: bytes | None) -> str:
    """A records file ``name`` holding ``content`` (None: a directory of that name)."""
    path = tmp_path / name
    if content is None:
        path.mkdir()
        (path / "part-0.csv").write_text("hp,wt\n1,2\n")
    else:
        path.write_bytes(content)
    return str(path)


UNREADABLE = {
    "directory": ("parts.csv", None, "is a directory, not a file", None),
    "latin-1 csv": (
        "latin1.csv",
        "hp,wt,name\n110,2.62,caf\xe9\n".encode("latin-1"),
        "is not UTF-8 text (it holds b'\\xe9', which UTF-8 cannot decode); save it as UTF-8",
        UnicodeDecodeError,
    ),
    "empty csv": (
        "zero.csv",
        b"",
        "is empty: it has not even a header line",
        pd.errors.EmptyDataError,
    ),
    "empty tsv": ("zero.tsv", b"\n\n", "is empty", pd.errors.EmptyDataError),
    "ragged csv": (
        "ragged.csv",
        b"hp,wt\n1,2\n3,4,5\n",
        "is not well-formed CSV",
        pd.errors.ParserError,
    ),
    "empty parquet": ("zero.parquet", b"", "is not a readable Parquet file", ValueError),
    "csv as parquet": (
        "cars.parquet",
        b"hp,wt\n1,2\n",
        "is not a readable Parquet file",
        ValueError,
    ),
}


@pytest.mark.parametrize(("name", "content", "words", "cause"), UNREADABLE.values(), ids=UNREADABLE)
def test_an_unreadable_file_is_named_with_the_fix(
    tmp_path: Path, name: str, content: bytes | None, words: str, cause: type | None
) -> None:
    path = unreadable(tmp_path, name, content)
    with pytest.raises(MrsDeployRecordsError) as info:
        load_records(path)
    assert str(info.value).startswith(f"records file {path!r} {words}")
    if cause is not None:
        assert isinstance(info.value.__cause__, cause)  # the library's error, kept


#: Files whose every data line has more fields than the header: pandas made the extra leading
#: fields row labels and the values moved left under the header's names.
MORE_FIELDS_THAN_HEADER = {
    "two extra csv": ("shifted.csv", b"hp,wt\n1,2,3,4\n5,6,7,8\n", 4),
    "one extra csv": ("shifted.csv", b"hp,wt\n1,2,3\n", 3),
    "r row names tsv": ("cars.tsv", b'hp\twt\n"Mazda RX4"\t110\t2.62\n', 3),
    "gzip csv": ("shifted.csv.gz", b"hp,wt\n1,2,3,4\n", 4),
}


@pytest.mark.parametrize(
    ("name", "content", "fields"), MORE_FIELDS_THAN_HEADER.values(), ids=MORE_FIELDS_THAN_HEADER
)
def test_data_lines_with_more_fields_than_the_header_are_refused_not_shifted(
    tmp_path: Path, name: str, content: bytes, fields: int
) -> None:
    """``hp,wt`` over ``1,2,3,4`` was sent as hp 3, wt 4 without a word."""
    if name.endswith(".gz"):
        import gzip

        content = gzip.compress(content)
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MrsDeployRecordsError) as info:
        prepare_records(load_records(str(path)), HP_WT)
    message = str(info.value)
    assert message.startswith(f"records file {str(path)!r} is not well-formed")
    assert f"data lines have {fields} fields and its header names 2" in message
    assert "row.names = FALSE" in message


def test_a_header_naming_every_field_is_read_as_written(tmp_path: Path) -> None:
    """R's write.csv names the row names' column (``""``): nothing is shifted or refused."""
    path = tmp_path / "cars.csv"
    path.write_bytes(b'"","hp","wt"\n"Mazda RX4",110,2.62\n')
    sent = json.loads(encode_records(prepare_records(load_records(str(path)), HP_WT)))
    assert sent == [{"hp": 110, "wt": 2.62}]


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_a_compressed_parquet_file_is_read(tmp_path: Path, suffix: str) -> None:
    import bz2
    import gzip
    import io
    import lzma

    compress = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix]
    buffer = io.BytesIO()
    pd.DataFrame({"hp": [110, 93], "wt": [2.62, 2.32]}).to_parquet(buffer)
    path = tmp_path / f"cars.parquet{suffix}"
    path.write_bytes(compress(buffer.getvalue()))
    sent = json.loads(encode_records(prepare_records(load_records(str(path)), HP_WT)))
    assert sent == [{"hp": 110, "wt": 2.62}, {"hp": 93, "wt": 2.32}]
