"""Records files that used to lose or change rows without a word, or fail with a library's
bare exception: a repeated name in a CSV header or a JSON Lines record, a TSV field whose
opening quote swallowed the lines after it, and damaged or mislabelled compression."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from airflow_provider.api.models import ParameterDefinition
from airflow_provider.exceptions import MrsDeployRecordsError
from airflow_provider.records.check import prepare_records, text_inputs
from airflow_provider.records.encode import encode_records
from airflow_provider.records.read import load_records

X = [ParameterDefinition("x", "numeric")]
TITLED = [ParameterDefinition("id", "integer"), ParameterDefinition("title", "character")]


def sent(path: Path, inputs: list[ParameterDefinition]) -> list[dict[str, object]]:
    frame = load_records(str(path), None, text_inputs(inputs))
    return list(json.loads(encode_records(prepare_records(frame, inputs))))


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".csv.gz"])
def test_an_input_named_twice_in_a_header_is_refused(tmp_path: Path, suffix: str) -> None:
    """pandas renamed the second ``x`` to ``x.1``, which was then dropped as no input."""
    sep = "\t" if suffix == ".tsv" else ","
    text = f"\ufeffx{sep}x{sep}y\n1{sep}2{sep}3\n"  # a BOM too: the header is read as pandas does
    path = tmp_path / f"dup{suffix}"
    data = text.encode()
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    with pytest.raises(MrsDeployRecordsError, match=r"header names \['x'\] more than once"):
        sent(path, X)


def test_a_name_repeated_only_among_other_columns_is_dropped_with_them(tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_text('x,y,y\n1,"a",b\n')
    assert sent(path, X) == [{"x": 1}]


def test_a_json_lines_record_repeating_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    path.write_text('{"x": 1}\n{"x": 1, "x": 2}\n')
    with pytest.raises(MrsDeployRecordsError, match=r"line 2 gives the key 'x' more than once"):
        sent(path, X)


def test_a_tsv_quote_that_swallowed_lines_is_refused(tmp_path: Path) -> None:
    """Three rows, of which the reader made two: the second went into the first's title."""
    path = tmp_path / "titles.tsv"
    path.write_text('id\ttitle\n1\t"Best\n2\tnext"\n3\tplain\n')
    with pytest.raises(MrsDeployRecordsError) as info:
        sent(path, TITLED)
    message = str(info.value)
    assert "titles.tsv" in message and "row 0, column 'title' holds a line break" in message


def test_a_quoted_tsv_as_r_writes_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "quoted.tsv"
    path.write_text('"id"\t"title"\n1\t"12"" pizza"\n2\t"a\tb"\n')
    assert sent(path, TITLED) == [{"id": 1, "title": '12" pizza'}, {"id": 2, "title": "a\tb"}]


BROKEN = {
    "not gzip": (".csv.gz", b"x\n1\n", "is not readable as gzip data"),
    "cut gzip": (".csv.gz", gzip.compress(b"x\n" + b"1\n" * 1000)[:-20], "cut short"),
    "cut gzip jsonl": (".jsonl.gz", gzip.compress(b'{"x": 1}\n' * 500)[:-20], "gzip"),
    "not bz2": (".csv.bz2", b"x\n1\n", "is not readable as bz2 data"),
    "not xz": (".csv.xz", b"x\n1\n", "is not readable as xz data"),
    "damaged parquet": (".parquet", b"PAR1" + b"\x00" * 64 + b"PAR1", "not a readable Parquet"),
}


@pytest.mark.parametrize(("suffix", "content", "words"), BROKEN.values(), ids=BROKEN.keys())
def test_a_damaged_or_mislabelled_file_is_a_records_error(
    tmp_path: Path, suffix: str, content: bytes, words: str
) -> None:
    path = tmp_path / f"records{suffix}"
    path.write_bytes(content)
    with pytest.raises(MrsDeployRecordsError, match=words) as info:
        sent(path, X)
    assert f"records{suffix}" in str(info.value)
