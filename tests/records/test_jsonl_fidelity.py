"""A JSON Lines file gives exactly what the same rows as a list of dicts give: the same frame,
the same body sent, the same refusals. (pandas' JSON reader rounded some floats, read quoted
digits as numbers and date-like text as timestamps.)"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.api import ParameterDefinition
from airflow_provider.records import (
    MrsDeployRecordsError,
    encode_records,
    load_records,
    prepare_records,
)

HP_WT = [ParameterDefinition("hp", "numeric"), ParameterDefinition("wt", "numeric")]


def write_jsonl(path: Path, rows: list[dict[str, Any]], trailer: str = "") -> str:
    """``rows`` as a JSON Lines file (gzip-compressed for a ``.gz`` name), as ``json`` writes
    them."""
    text = ("".join(json.dumps(row) + "\n" for row in rows) + trailer).encode("utf-8")
    path.write_bytes(gzip.compress(text) if path.name.endswith(".gz") else text)
    return str(path)


def sent(source: Any, inputs: list[ParameterDefinition]) -> Any:
    """What Submit would send for ``source``, decoded."""
    return json.loads(encode_records(prepare_records(load_records(source), inputs)))


def refusal(source: Any, inputs: list[ParameterDefinition]) -> str:
    """The problems of a refused ``source``: the message without its source and numbering,
    which rightly differ between a file and a list."""
    with pytest.raises(MrsDeployRecordsError) as info:
        prepare_records(load_records(source), inputs)
    message = str(info.value)
    return message[message.index(": ") + 2 : message.index(" (rows are counted")]


@pytest.mark.parametrize("name", ["floats.jsonl", "floats.jsonl.gz"])
def test_every_float_is_sent_as_written(tmp_path: Path, name: str) -> None:
    rng = random.Random(1)
    rows = [{"hp": rng.uniform(50, 350), "wt": rng.uniform(1, 6)} for _ in range(1000)]
    rows.append({"hp": 1.0000000000000002, "wt": 2.2250738585072014e-308})
    path = write_jsonl(tmp_path / name, rows)
    assert sent(path, HP_WT) == rows == sent(rows, HP_WT)


ROW_SETS = {
    "numbers": [{"hp": 110, "wt": 2.62}, {"hp": 93.5, "wt": 3}],
    "digit text": [{"code": "007", "hp": "110"}, {"code": "042", "hp": "93"}],
    "date-like text": [{"day": "2020-01-01", "created_at": "2020-01-01T10:00:00Z"}],
    "epoch-like": [{"date": 1577836800000, "modified": 1577836800}],
    "missing keys and nulls": [{"a": 1, "b": "x"}, {"b": None}, {"a": None, "c": True}],
    "big and small ints": [{"n": 9007199254740993}, {"n": -(2**63)}],
    "composites": [{"v": [1, 2.5], "m": {"a": [1, 2]}, "t": "x"}],
}


@pytest.mark.parametrize("rows", ROW_SETS.values(), ids=ROW_SETS.keys())
def test_a_file_loads_as_the_same_rows_in_a_list(tmp_path: Path, rows: list[dict]) -> None:
    loaded = load_records(write_jsonl(tmp_path / "rows.jsonl", rows))
    pd.testing.assert_frame_equal(loaded, load_records(rows), check_exact=True)


def test_digit_and_date_like_text_reaches_a_character_input_as_written(tmp_path: Path) -> None:
    rows = [{"code": "007", "day": "2020-01-01"}, {"code": "042", "day": "2020-01-02"}]
    inputs = [ParameterDefinition("code", "character"), ParameterDefinition("day", "character")]
    assert sent(write_jsonl(tmp_path / "codes.jsonl", rows), inputs) == rows


def test_numbers_quoted_as_text_are_refused_as_in_a_list(tmp_path: Path) -> None:
    rows = [{"hp": "110", "wt": 2.62}]
    from_file = refusal(write_jsonl(tmp_path / "text.jsonl", rows), HP_WT)
    assert from_file == refusal(rows, HP_WT)
    assert from_file == "row 0, column 'hp': '110' is text, not a number"


def test_a_trailing_blank_line_and_a_bad_line_after_it(tmp_path: Path) -> None:
    rows = [{"hp": 1, "wt": 2.5}]
    assert sent(write_jsonl(tmp_path / "blank.jsonl", rows, "\n   \n"), HP_WT) == rows
    bad = write_jsonl(tmp_path / "bad.jsonl", rows, "\n" + '{"hp": 1, "wt":\n')
    with pytest.raises(MrsDeployRecordsError, match=r"bad\.jsonl': line 3 is not JSON"):
        load_records(bad)


def test_a_line_that_is_not_utf8_is_named_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"name": "a"}\n' + '{"name": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(MrsDeployRecordsError, match="line 2 is not UTF-8") as info:
        load_records(str(path))
    assert "save the file as UTF-8" in str(info.value)
    assert isinstance(info.value.__cause__, UnicodeDecodeError)
