"""The outputs table: columns, names, types, and values that read back exactly."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider.api import ExecutionResult, MrsDeployError
from airflow_provider.outputs import (
    MrsDeployOutputsError,
    OutputFormat,
    OutputsTable,
    RenderedTable,
    column_name,
)
from airflow_provider.records.read import frame_of_rows


def ok(**outputs: object) -> ExecutionResult:
    return ExecutionResult(success=True, output_parameters=dict(outputs))


def table_of(results: list[ExecutionResult], names: list[str], **kwargs: object) -> pd.DataFrame:
    table = OutputsTable(names, **kwargs)  # type: ignore[arg-type]
    table.add(results)
    return table.build()


def written(frame: pd.DataFrame, fmt: OutputFormat) -> bytes:
    buffer = io.BytesIO()
    RenderedTable(frame, fmt).write(buffer)
    return buffer.getvalue()


def read_back(data: bytes, fmt: OutputFormat) -> pd.DataFrame:
    if fmt is OutputFormat.PARQUET:
        return pd.read_parquet(io.BytesIO(data))
    if fmt is OutputFormat.CSV:
        # Nullable types: an integer column with a blank cell stays integers.
        return pd.read_csv(io.BytesIO(data), dtype_backend="numpy_nullable")
    # Object columns: the values exactly as JSON gave them.
    return pd.DataFrame([json.loads(line) for line in data.decode().splitlines()], dtype=object)


def test_table_has_one_row_per_index_with_outputs_and_errors() -> None:
    results = [
        ok(answer=0.5),
        ExecutionResult(success=False, error_message="boom"),
        ok(answer=0.25, extra=[1, 2]),
    ]
    table = OutputsTable(["answer"], index_offset=10)
    table.add(results)
    built = table.build(pd.DataFrame({"hp": [1, 2, 3]}))
    assert list(built["index"]) == [10, 11, 12]
    assert list(built["success"]) == [True, False, True]
    assert built["error_message"][1] == "boom"
    assert built["answer"].tolist()[0] == 0.5 and pd.isna(built["answer"][1])
    assert built["extra"][2] == "[1,2]"
    assert list(built["input_hp"]) == [1, 2, 3]


def test_table_built_a_batch_at_a_time_equals_the_table_built_at_once() -> None:
    first = [ok(answer=0.5), ExecutionResult(success=False, error_message="boom")]
    second = [ok(answer=0.25, extra={"k": 1}), ok(late="x", answer=1.0)]
    table = OutputsTable(["answer"], index_offset=5)
    table.add(first)
    table.add([])
    table.add(second)
    assert len(table) == 4
    built = table.build()
    pd.testing.assert_frame_equal(built, table_of(first + second, ["answer"], index_offset=5))
    assert list(built.columns) == ["index", "success", "error_message", "answer", "extra", "late"]
    assert built["extra"].isna().tolist() == [True, True, False, True]
    assert built["extra"][2] == '{"k":1}'
    with pytest.raises(MrsDeployError, match="cannot put 3 input rows beside 4 results"):
        table.build(pd.DataFrame({"hp": [1, 2, 3]}))


@pytest.mark.parametrize(
    ("output", "column"),
    [
        ("index", "output_index"),
        ("success", "output_success"),
        ("error_message", "output_error_message"),
        ("input_hp", "output_input_hp"),
        ("output_index", "output_output_index"),
        ("answer", "answer"),
        ("Index", "Index"),
    ],
)
def test_column_names_of_outputs(output: str, column: str) -> None:
    assert column_name(output) == column


def test_outputs_named_like_the_tables_columns_never_overwrite_them() -> None:
    """A failed row stays failed even when the service returns ``success`` as an output."""
    results = [
        ExecutionResult(
            success=False,
            error_message="boom",
            output_parameters={
                "index": 99,
                "success": True,
                "error_message": "fine",
                "input_hp": 1,
            },
        ),
        ok(index=98, success=True, error_message=None, input_hp=2, output_index=5),
    ]
    table = OutputsTable(["success"], index_offset=3)
    table.add(results)
    built = table.build(pd.DataFrame({"hp": [110, 93]}))
    assert list(built["index"]) == [3, 4]
    assert list(built["success"]) == [False, True]
    assert built["error_message"][0] == "boom" and pd.isna(built["error_message"][1])
    assert list(built["input_hp"]) == [110, 93]
    assert list(built["output_index"]) == [99, 98]
    assert list(built["output_success"]) == [True, True]
    assert list(built["output_input_hp"]) == [1, 2]
    assert list(built["output_output_index"].isna()) == [True, False]
    assert len(set(built.columns)) == len(built.columns)
    assert table.renamed_outputs == {
        "success": "output_success",
        "index": "output_index",
        "error_message": "output_error_message",
        "input_hp": "output_input_hp",
        "output_index": "output_output_index",
    }


def test_text_in_a_numeric_output_is_refused_naming_row_and_column() -> None:
    table = OutputsTable(["answer"], index_offset=100)
    table.add([ok(answer=0.5), ok(answer=None), ok(answer="n/a")])
    with pytest.raises(MrsDeployOutputsError) as error:
        table.build()
    message = str(error.value)
    assert "'answer'" in message and "row 102" in message and "'n/a'" in message
    assert "row 100" in message and "nothing was written" in message


def test_integers_beyond_64_bits_are_refused() -> None:
    table = OutputsTable(["count"])
    table.add([ok(count=1), ok(count=2**64)])
    with pytest.raises(MrsDeployOutputsError, match=r"'count' of row 1 is 18446744073709551616"):
        table.build()


def test_integers_that_a_float_column_cannot_hold_exactly_are_refused() -> None:
    table = OutputsTable(["x"])
    table.add([ok(x=0.5), ok(x=2**53 + 1)])
    with pytest.raises(MrsDeployOutputsError, match="row 1"):
        table.build()


def test_integers_stay_exact_beside_missing_values() -> None:
    big = 2**62 + 1
    built = table_of([ok(n=big), ok(n=None), ok(n=-big)], ["n"])
    assert built["n"].dtype == "Int64"
    for fmt in OutputFormat:
        back = read_back(written(built, fmt), fmt)
        values = [None if pd.isna(v) else int(v) for v in back["n"]]
        assert values == [big, None, -big], fmt


def test_declared_vectors_are_json_text_even_when_a_row_returns_a_scalar() -> None:
    built = table_of([ok(v=[1, 2]), ok(v=3), ok(v=None)], ["v"], output_types={"v": "vector"})
    assert built["v"].tolist()[:2] == ["[1,2]", "3"] and pd.isna(built["v"][2])


def test_a_text_and_an_object_of_the_same_characters_stay_apart() -> None:
    """Before, the object became the JSON text ``{"a":1}`` and the text stayed itself: two
    values the server sent apart were written alike, in every format."""
    built = table_of([ok(v='{"a":1}'), ok(v={"a": 1}), ok(v=None)], ["v"])
    values = built["v"].tolist()
    assert [json.loads(v) for v in values[:2]] == ['{"a":1}', {"a": 1}]
    assert pd.isna(values[2])


def test_a_composite_in_a_later_batch_makes_the_earlier_rows_json_text() -> None:
    """A vector of one value comes as a scalar (as R writes it), a longer one as a list."""
    table = OutputsTable(["v"])
    table.add([ok(v=3), ok(v="x"), ok(v=None)])
    table.add([ok(v=[1, 2]), ok(v=True)])
    values = table.build()["v"].tolist()
    assert values[:2] == ["3", '"x"'] and pd.isna(values[2])
    assert values[3:] == ["[1,2]", "true"]


def test_mixed_booleans_and_numbers_are_refused() -> None:
    table = OutputsTable(["flag"])
    table.add([ok(flag=True), ok(flag=1)])
    expected = "row 1 holds integer 1 where row 0 holds logical"
    with pytest.raises(MrsDeployOutputsError, match=expected):
        table.build()


def test_a_value_parquet_cannot_hold_fails_before_writing() -> None:
    frame = pd.DataFrame({"index": [0, 1], "odd": [object(), object()]})
    with pytest.raises(MrsDeployError, match="cannot be written as Parquet"):
        RenderedTable(frame, OutputFormat.PARQUET)


FLOATS = [1 / 3, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, -0.0, 123456789.12345679, 2**-30]


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_floats_round_trip_bit_for_bit(fmt: OutputFormat) -> None:
    built = table_of([ok(answer=value) for value in FLOATS], ["answer"])
    back = read_back(written(built, fmt), fmt)
    assert [float(v).hex() for v in back["answer"]] == [v.hex() for v in FLOATS]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False) | st.none(), min_size=1, max_size=20)
)
def test_any_finite_floats_round_trip_in_every_format(values: list[float | None]) -> None:
    if all(v is None for v in values):
        values = [*values, 0.5]
    built = table_of([ok(x=v) for v in values], ["x"])
    for fmt in OutputFormat:
        back = read_back(written(built, fmt), fmt)
        got = [None if pd.isna(v) else float(v).hex() for v in back["x"]]
        assert got == [None if v is None else v.hex() for v in values], fmt


def test_jsonl_keeps_text_booleans_and_json_outputs() -> None:
    built = table_of(
        [ok(word='é\n"x"', flag=True, m=[[1, 2]]), ExecutionResult(False, error_message="e")],
        ["word", "flag", "m"],
        output_types={"m": "matrix"},
    )
    rows = [json.loads(line) for line in written(built, OutputFormat.JSONL).splitlines()]
    assert rows[0] == {
        "index": 0,
        "success": True,
        "error_message": None,
        "word": 'é\n"x"',
        "flag": True,
        "m": "[[1,2]]",
    }
    assert rows[1]["success"] is False and rows[1]["flag"] is None and rows[1]["word"] is None


def with_inputs(inputs: list[dict[str, object]]) -> pd.DataFrame:
    """The table of one output beside ``inputs`` read as a records list is."""
    built = OutputsTable(["y"])
    built.add([ok(y=float(i) / 3) for i in range(len(inputs))])
    return built.build(frame_of_rows(inputs))


LONE = "text \udc80 with a lone surrogate"


def test_a_lone_surrogate_in_the_records_is_written_escaped_in_json_lines() -> None:
    """msgspec refuses such a string; the slice holding it goes through the standard encoder,
    and every row, that one and the others in its slice, reads back as it would otherwise."""
    inputs = [{"note": LONE, "x": 1.5, "v": [1, None]}, {"note": "é", "x": float("nan"), "v": []}]
    data = written(with_inputs(inputs), OutputFormat.JSONL)
    data.decode("ascii")  # the surrogate escaped, and é with it
    plain = [dict(row, note="n") for row in inputs]
    unescaped = written(with_inputs(plain), OutputFormat.JSONL)
    expected = [json.loads(line) for line in unescaped.splitlines()]
    expected[0]["input_note"], expected[1]["input_note"] = LONE, "é"
    assert [json.loads(line) for line in data.splitlines()] == expected
    assert expected[1]["input_x"] is None  # NaN, as msgspec writes it


def test_a_lone_surrogate_in_the_records_is_refused_for_csv_before_anything_is_written() -> None:
    frame = with_inputs([{"note": "fine"}, {"note": LONE}])
    refused = r"row 1 of column 'input_note' holds a lone surrogate.*jsonl"
    with pytest.raises(MrsDeployError, match=refused):
        RenderedTable(frame, OutputFormat.CSV)
    with pytest.raises(MrsDeployError, match=r"cannot be written as Parquet.*jsonl"):
        RenderedTable(frame, OutputFormat.PARQUET)


def test_a_servers_lone_surrogate_is_kept_by_json_lines_and_refused_by_the_others() -> None:
    """A server's text of undecodable bytes arrives escaped in its JSON: pandas' string type
    refuses it, which failed the table with a bare UnicodeEncodeError."""
    built = table_of(
        [ok(s="x\ud800", n=1), ExecutionResult(False, error_message="e" + LONE)], ["s", "n"]
    )
    rows = [json.loads(line) for line in written(built, OutputFormat.JSONL).splitlines()]
    assert [(row["s"], row["error_message"], row["n"]) for row in rows] == [
        ("x\ud800", None, 1),
        (None, "e" + LONE, None),
    ]
    refused = r"row 1 of column 'error_message' holds a lone surrogate.*service return text"
    with pytest.raises(MrsDeployError, match=refused):
        RenderedTable(built, OutputFormat.CSV)
    with pytest.raises(MrsDeployError, match=r"cannot be written as Parquet.*jsonl"):
        RenderedTable(built, OutputFormat.PARQUET)
    # Without one, text is pandas' string type as before.
    assert str(table_of([ok(s="x")], ["s"])["s"].dtype) == "str"
