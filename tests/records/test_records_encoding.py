"""The column-wise body encoder against ``json.dumps`` of the same rows, value for value.

Random rows of every parameter type (seeded, so a failure reproduces) are encoded both ways and
decoded again; floats are compared bit for bit (``float.hex``), so a lost digit or a lost sign of
zero fails, and ints must stay ints.
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_provider.api import ParameterDefinition
from airflow_provider.records import (
    MrsDeployRecordsError,
    PreparedRecords,
    encode_records,
    iter_encoded_records,
    load_records,
    prepare_records,
)

SPECIAL_FLOATS = [
    0.0,
    -0.0,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    0.1,
    1 / 3,
    2.5e-5,
    1e15,
    1e16,
    1e22,
    123456789012345680000.0,
    3.0,
    -7.0,
    0.30000000000000004,
]
ALPHABET = ['"', "\\", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "€", "😀", ",", ":", "{", "}"]
ALPHABET += ["[", "]", " ", "a", "Z", "0", "/", "\u2028"]


def exact(value: Any) -> Any:
    """A form of a decoded JSON value in which 1 != 1.0 and 0.0 != -0.0."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, list):
        return ("list", [exact(v) for v in value])
    if isinstance(value, dict):
        return ("dict", [(k, exact(v)) for k, v in value.items()])
    return (type(value).__name__, value)


def random_float(rng: random.Random) -> float:
    if rng.random() < 0.2:
        return rng.choice(SPECIAL_FLOATS)
    return rng.uniform(-1, 1) * 10.0 ** rng.randint(-300, 300)


def random_int(rng: random.Random) -> int:
    return rng.choice([0, -1, 2**63 - 1, -(2**63), rng.randint(-(10**12), 10**12)])


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))


def random_value(kind: str, rng: random.Random) -> Any:
    if kind == "numeric":
        return random_float(rng)
    if kind == "integer":
        return random_int(rng)
    if kind == "logical":
        return rng.random() < 0.5
    if kind == "character":
        return random_text(rng)
    if kind == "vector":
        return [random_float(rng) for _ in range(rng.randint(0, 4))]
    if kind == "matrix":
        width = rng.randint(1, 3)
        return [[random_int(rng) for _ in range(width)] for _ in range(rng.randint(1, 3))]
    return {"a": [random_float(rng)], "b": [random_text(rng), random_text(rng)]}


KINDS = ("numeric", "integer", "logical", "character", "vector", "matrix", "data.frame")


def random_rows(kinds: tuple[str, ...], count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{f"c{i}_{k}": random_value(k, rng) for i, k in enumerate(kinds)} for _ in range(count)]


def reference(rows: list[dict[str, Any]]) -> Any:
    return exact(json.loads(json.dumps(rows, allow_nan=False)))


def encoded(prepared: PreparedRecords, chunk_rows: int) -> Any:
    body = b"".join(iter_encoded_records(prepared, chunk_rows=chunk_rows))
    return exact(json.loads(body))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("chunk_rows", [1, 7, 20_000])
def test_every_type_from_a_list_of_dicts_matches_json_dumps(seed: int, chunk_rows: int) -> None:
    kinds = tuple(random.Random(seed).sample(KINDS, k=random.Random(seed).randint(1, 7)))
    rows = random_rows(kinds, 40, seed)
    inputs = [ParameterDefinition(f"c{i}_{k}", k) for i, k in enumerate(kinds)]
    prepared = prepare_records(load_records(rows), inputs)
    assert encoded(prepared, chunk_rows) == reference(rows)


@pytest.mark.parametrize("seed", range(6))
def test_typed_numpy_columns_match_json_dumps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = 500
    floats = rng.normal(size=count) * 10.0 ** rng.integers(-300, 300, size=count)
    floats[: len(SPECIAL_FLOATS)] = SPECIAL_FLOATS
    frame = pd.DataFrame(
        {
            "f64": floats,
            "f32": rng.normal(size=count).astype(np.float32),
            "i64": rng.integers(-(2**63), 2**63 - 1, size=count, dtype=np.int64),
            "u64": rng.integers(0, 2**64 - 1, size=count, dtype=np.uint64),
            "i8": rng.integers(-128, 127, size=count, dtype=np.int8),
            "flag": rng.random(count) < 0.5,
            "text": [random_text(random.Random(seed * 1000 + i)) for i in range(count)],
        }
    )
    inputs = [
        ParameterDefinition("f64", "numeric"),
        ParameterDefinition("f32", "numeric"),
        ParameterDefinition("i64", "integer"),
        ParameterDefinition("u64", "numeric"),
        ParameterDefinition("i8", "integer"),
        ParameterDefinition("flag", "logical"),
        ParameterDefinition("text", "character"),
    ]
    expected_rows = [
        {
            "f64": float(frame["f64"].iat[i]),
            "f32": float(frame["f32"].iat[i]),
            "i64": int(frame["i64"].iat[i]),
            "u64": int(frame["u64"].iat[i]),
            "i8": int(frame["i8"].iat[i]),
            "flag": bool(frame["flag"].iat[i]),
            "text": str(frame["text"].iat[i]),
        }
        for i in range(count)
    ]
    prepared = prepare_records(frame, inputs)
    assert encoded(prepared, 64) == reference(expected_rows)


def test_extension_dtypes_and_numpy_composites() -> None:
    frame = pd.DataFrame(
        {
            "n": pd.array([1, 2], dtype="Int64"),
            "x": pd.array([0.5, -0.0], dtype="Float64"),
            "b": pd.array([True, False], dtype="boolean"),
            "v": [np.array([1.5, 2.0]), (1, 2)],
            "m": [np.array([[1, 2], [3, 4]]), [[np.float64(0.25)]]],
            "d": [{"k": np.array([1, 2])}, {"k": [np.int64(3)]}],
        }
    )
    inputs = [
        ParameterDefinition("n", "integer"),
        ParameterDefinition("x", "numeric"),
        ParameterDefinition("b", "logical"),
        ParameterDefinition("v", "vector"),
        ParameterDefinition("m", "matrix"),
        ParameterDefinition("d", "data.frame"),
    ]
    expected = [
        {"n": 1, "x": 0.5, "b": True, "v": [1.5, 2.0], "m": [[1, 2], [3, 4]], "d": {"k": [1, 2]}},
        {"n": 2, "x": -0.0, "b": False, "v": [1, 2], "m": [[0.25]], "d": {"k": [3]}},
    ]
    assert encoded(prepare_records(frame, inputs), 1) == reference(expected)


def test_strings_json_cannot_carry_as_utf8_are_escaped() -> None:
    rows = [{"s": "lone \ud800 surrogate"}, {"s": 'quote " and \\'}]
    frame = pd.DataFrame({"s": pd.Series([r["s"] for r in rows], dtype=object)})
    prepared = prepare_records(frame, [ParameterDefinition("s", "character")])
    assert encoded(prepared, 20_000) == reference(rows)


def test_slices_of_a_prepared_frame_encode_their_own_rows() -> None:
    rows = random_rows(("numeric", "character", "vector"), 25, seed=3)
    inputs = [
        ParameterDefinition("c0_numeric", "numeric"),
        ParameterDefinition("c1_character", "character"),
        ParameterDefinition("c2_vector", "vector"),
    ]
    prepared = prepare_records(load_records(rows), inputs)
    parts = []
    for start in range(0, 25, 10):
        # Sliced as a splitter would, with and without resetting the index.
        part = prepared.frame.iloc[start : start + 10]
        if start == 10:
            part = part.reset_index(drop=True)
        parts.append(json.loads(encode_records(PreparedRecords(part, prepared.dropped_columns))))
    assert exact([row for part in parts for row in part]) == reference(rows)


def test_a_service_without_inputs_gets_empty_objects() -> None:
    prepared = prepare_records(pd.DataFrame(index=range(5)), [])
    assert json.loads(b"".join(iter_encoded_records(prepared, chunk_rows=2))) == [{}] * 5


def test_missing_values_in_typed_columns_name_the_row() -> None:
    frame = pd.DataFrame(
        {
            "b": pd.array([True, None], dtype="boolean"),
            "s": pd.array(["x", None], dtype="string"),
        }
    )
    inputs = [ParameterDefinition("b", "logical"), ParameterDefinition("s", "character")]
    missing = r"row 1, column 'b': value is missing.*row 1, column 's'"
    with pytest.raises(MrsDeployRecordsError, match=missing):
        prepare_records(frame, inputs)


def test_chunk_rows_must_be_positive() -> None:
    prepared = prepare_records(pd.DataFrame({"x": [1.0]}), [ParameterDefinition("x", "numeric")])
    with pytest.raises(ValueError, match="chunk_rows"):
        list(iter_encoded_records(prepared, chunk_rows=0))


def test_non_finite_floats_never_become_null() -> None:
    frame = pd.DataFrame({"x": [1.0, float("nan")]})
    unchecked = PreparedRecords(frame, ())
    with pytest.raises(MrsDeployRecordsError, match="NaN or inf"):
        encode_records(unchecked)
