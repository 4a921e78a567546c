"""The streamed reading of a batch's answer gives exactly what the whole-answer parser gives,
however the body is cut into chunks, spelled or ordered; and refuses what it refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider.api import MrsDeployProtocolError
from airflow_provider.api.errors import MrsDeployResponseTooLargeError
from airflow_provider.api.models import BatchStatus, ExecutionResult
from airflow_provider.api.parsers import parse_batch_status_body
from airflow_provider.api.results_stream import BatchAnswerReader

#: Text that could fool a cut: rows' punctuation, brackets without their pair, escapes (a
#: backslash before a closing quote, ``"\\"``; an escaped quote, ``"\""``), R's printed
#: vectors, lone surrogates (JSON escapes them, msgspec refuses them, the whole-answer parser
#: accepts them; a high one at a row's end msgspec calls truncated).
TRICKY_TEXT = [
    '},{"success":false}',
    "]}",
    '"\\',
    "\\",
    '\\"',
    "\\\\",
    '"}',
    "é😀",
    "a\nb",
    "",
    "{[",
    "[1] 42\n",
    "x" * 300,
    "a\udc80",
    "x\ud800",
]

texts = st.one_of(st.sampled_from(TRICKY_TEXT), st.text(max_size=30))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
#: Values nested as outputs are (a data.frame is a list of records): objects and arrays inside
#: the row, with tricky text at every level.
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=12,
)
rows = st.fixed_dictionaries(
    {"success": st.booleans()},
    optional={
        "errorMessage": st.one_of(st.none(), texts),
        "consoleOutput": st.one_of(st.none(), texts),
        "changedFiles": st.lists(st.sampled_from(["a.csv", "plot.png"]), max_size=2),
        "outputParameters": st.dictionaries(st.sampled_from(["answer", "x", "y"]), values),
        "outputFiles": st.dictionaries(st.sampled_from(["f.txt"]), st.sampled_from(["aGk="])),
    },
)


def body_of(
    results: list[dict[str, Any]], *, state_after: bool = False, indent: int | None = None
) -> bytes:
    counts = {"completedItemCount": len(results), "totalItemCount": len(results)}
    head: dict[str, Any] = {} if state_after else {"state": "Complete", **counts}
    answer = {**head, "batchExecutionResults": results}
    if state_after:
        answer.update({"state": "Complete", **counts})
    # A lone surrogate, which UTF-8 cannot encode, as the JSON escape ``\\udc80``.
    return json.dumps(answer, indent=indent, ensure_ascii=False).encode("utf-8", "backslashreplace")


def streamed(body: bytes, cuts: list[int], limit: int | None = None) -> BatchStatus:
    reader = BatchAnswerReader(limit=limit)
    taken: list[ExecutionResult] = []
    start = 0
    for cut in [*sorted({c % (len(body) + 1) for c in cuts}), len(body)]:
        taken += reader.feed(body[start:cut])
        start = cut
    status, rest = reader.finish()
    assert status.results == ()
    return BatchStatus(
        status.state, status.completed_item_count, status.total_item_count, (*taken, *rest)
    )


@settings(max_examples=150, deadline=None)
@given(
    results=st.lists(rows, max_size=12),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
    state_after=st.booleans(),
    indent=st.sampled_from([None, 2]),
)
def test_any_cutting_gives_what_the_whole_parser_gives(
    results: list[dict[str, Any]], cuts: list[int], state_after: bool, indent: int | None
) -> None:
    body = body_of(results, state_after=state_after, indent=indent)
    assert streamed(body, cuts) == parse_batch_status_body(body)


def test_rows_come_back_as_their_bytes_arrive() -> None:
    results = [{"success": True, "outputParameters": {"answer": i}} for i in range(1000)]
    body = body_of(results)
    reader = BatchAnswerReader()
    first = reader.feed(body[: len(body) // 2])
    assert 400 < len(first) <= 500  # about half, without waiting for the end
    rest = reader.feed(body[len(body) // 2 :])
    status, last = reader.finish()
    assert [r.output_parameters["answer"] for r in first + rest + last] == list(range(1000))
    assert status.total_item_count == 1000 and reader.rows == 1000


def rows_body(
    results: list[dict[str, Any]], *, state_after: bool = False, indent: int | None = None
) -> tuple[bytes, list[int]]:
    """The body of ``results`` (as :func:`body_of` spells it) and, for each row, the offset
    just after its last byte: the reader has it whole once that many bytes have come."""
    counts = {"completedItemCount": len(results), "totalItemCount": len(results)}
    members = {"state": "Complete", **counts}
    if state_after:
        head, tail = b"{", b"], " + encoded(members)[1:]
    else:
        head, tail = encoded(members)[:-1] + b", ", b"]}"
    body, ends = bytearray(head + b'"batchExecutionResults": ['), []
    for position, result in enumerate(results):
        body += (b", " if position else b"") + encoded(result, indent)
        ends.append(len(body))
    body += tail
    return bytes(body), ends


def encoded(value: Any, indent: int | None = None) -> bytes:
    return json.dumps(value, indent=indent, ensure_ascii=False).encode("utf-8", "backslashreplace")


@settings(max_examples=150, deadline=None)
@given(
    results=st.lists(rows, min_size=1, max_size=8),
    step=st.integers(1, 97),
    state_after=st.booleans(),
    indent=st.sampled_from([None, 2]),
)
def test_nested_rows_come_back_as_their_bytes_arrive_however_small_the_chunks(
    results: list[dict[str, Any]], step: int, state_after: bool, indent: int | None
) -> None:
    """Each row comes back with the chunk that completes it, never later: the reader follows
    the rows' nesting and strings (escapes and brackets inside them included) across chunks."""
    body, ends = rows_body(results, state_after=state_after, indent=indent)
    reader = BatchAnswerReader()
    taken: list[ExecutionResult] = []
    for start in range(0, len(body), step):
        taken += reader.feed(body[start : start + step])
        arrived = min(start + step, len(body))
        assert len(taken) == sum(end <= arrived for end in ends), arrived
    status, rest = reader.finish()
    assert rest == []
    whole = parse_batch_status_body(body)
    assert (status.state, status.total_item_count) == (whole.state, whole.total_item_count)
    assert tuple(taken) == whole.results


def test_rows_holding_records_of_their_own_come_back_as_their_bytes_arrive() -> None:
    """A data.frame output: every row holds a list of records, so the last ``}`` of a chunk is
    nearly always inside a row. Cuts tried at the last few ``}`` of the buffer never reached a
    row's end: rows waited for the end of the answer, each chunk decoded the growing rest
    again (minutes for a few MB), and the answer failed ``max_response_bytes``, which rows are
    not limited by."""
    results = [
        {"success": True, "outputParameters": {"df": [{"a": i, "b": j} for j in range(150)]}}
        for i in range(60)
    ]
    body, ends = rows_body(results)
    row_size = max(b - a for a, b in zip([0, *ends], ends, strict=False))
    chunk = 2 * row_size
    reader = BatchAnswerReader(limit=3 * row_size)
    assert len(body) > 10 * 3 * row_size
    taken: list[ExecutionResult] = []
    feeds_with_rows = 0
    for start in range(0, len(body), chunk):
        rows = reader.feed(body[start : start + chunk])
        feeds_with_rows += bool(rows)
        taken += rows
    status, rest = reader.finish()
    feeds = -(-len(body) // chunk)
    assert feeds_with_rows == feeds  # each chunk completes a row or two
    assert tuple(taken + rest) == parse_batch_status_body(body).results
    assert status.total_item_count == 60


@pytest.mark.parametrize("step", [1 << 20, 4096, 333, 7])
def test_rows_nested_deeper_than_the_fast_ways_are_followed_too(step: int) -> None:
    deep: Any = "x]"
    for level in range(40):
        deep = [deep, "{"] if level % 2 else {"k": deep, "}": "["}
    results = [{"success": True, "outputParameters": {"d": deep}} for _ in range(5)]
    body, ends = rows_body(results)
    reader = BatchAnswerReader()
    taken: list[ExecutionResult] = []
    for start in range(0, len(body), step):
        taken += reader.feed(body[start : start + step])
        assert len(taken) == sum(end <= start + step for end in ends)
    assert tuple(taken + reader.finish()[1]) == parse_batch_status_body(body).results


def test_a_lone_high_surrogate_ending_the_last_row_is_read_as_the_whole_parser_reads_it() -> None:
    """msgspec calls ``"\\ud800"]`` truncated (it wants a second escape in the next six bytes),
    and a row ending so was taken for a row not whole yet, until the answer ended."""
    body = body_of([{"success": True, "outputParameters": {"s": "x\ud800"}}])
    assert body.endswith(b'"x\\ud800"}}]}')
    for cuts in ([], list(range(0, len(body), 5))):
        assert streamed(body, cuts) == parse_batch_status_body(body)


def test_the_members_around_the_rows_are_bounded_but_the_rows_are_not() -> None:
    results = [{"success": True, "consoleOutput": "x" * 100} for _ in range(2000)]
    body = body_of(results)
    assert len(body) > 200_000
    assert len(streamed(body, list(range(0, len(body), 4096)), limit=10_000).results) == 2000
    one_huge_row = body_of([{"success": True, "consoleOutput": "x" * 50_000}])
    with pytest.raises(MrsDeployResponseTooLargeError):
        streamed(one_huge_row, list(range(0, len(one_huge_row), 4096)), limit=10_000)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"state": "Complete", "batchExecutionResults": [{"success": true}', "ended inside"),
        (b'{"state": "Complete", "batchExecutionResults": [{"success": 1}]}', "'success'"),
        (b'{"state": "Complete", "batchExecutionResults": []} trailing', "does not end"),
        (
            b'{"state": "Complete", "batchExecutionResults": [], "state": "Failed"}',
            "names 'state' twice",
        ),
        (b'{"state": "Complete", "batchExecutionResults": [{"success": true}, oops]}', "ended"),
        (b"not json", "not valid JSON"),
    ],
)
def test_bad_answers_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(MrsDeployProtocolError, match=message):
        streamed(body, [7, 30])


def test_a_key_inside_another_value_is_not_taken_for_the_rows() -> None:
    body = json.dumps(
        {
            "name": '"batchExecutionResults": [{"success": false}]',
            "state": "Complete",
            "completedItemCount": 1,
            "totalItemCount": 1,
            "batchExecutionResults": [{"success": True}],
        }
    ).encode()
    assert streamed(body, [20, 60]) == parse_batch_status_body(body)


def test_a_lone_surrogate_in_the_rows_and_after_them_is_read_as_the_whole_parser_reads_it() -> None:
    """A service printing text of undecodable bytes: its answer escapes a lone surrogate. Read
    whole it parses; streamed, no cut could decode and the answer looked cut off."""
    row = {"success": False, "errorMessage": "bad \udc80", "consoleOutput": "echo: a\udc80\n"}
    results = [{"success": True, "outputParameters": {"s": "x\ud800"}}, row, {"success": True}]
    body = body_of(results, state_after=True)
    assert b"\\udc80" in body and b"\\ud800" in body
    whole = parse_batch_status_body(body)
    assert whole.results[1].console_output == "echo: a\udc80\n"
    for cuts in ([], [40, 90], list(range(0, len(body), 7))):
        assert streamed(body, cuts) == whole
    tail = body[:-1] + b', "name": "n\\udc80"}'
    assert streamed(tail, [40]) == parse_batch_status_body(tail)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (  # invalid UTF-8 before the rows: read whole, with the whole-answer parser's words
            b'{"state": "Complete\xff", "batchExecutionResults": [{"success": true}]}',
            r"not valid JSON \('utf-8' codec can't decode",
        ),
        (  # in a row: refused, naming the first row of the piece
            b'{"state": "Complete", "batchExecutionResults": [{"success": true}, '
            b'{"success": false, "errorMessage": "bad \xfe"}]}',
            r"row results from row \d on are not valid JSON",
        ),
        (  # nested deeper than the decoders recurse
            b'{"state": "Complete", "batchExecutionResults": [{"success": true, '
            b'"outputParameters": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}]}",
            r"row results from row 0 on are not valid JSON \(nested too deeply\)",
        ),
    ],
    ids=["head-invalid-utf8", "row-invalid-utf8", "row-deep"],
)
def test_rows_the_decoders_refuse_are_protocol_errors(body: bytes, message: str) -> None:
    """A bare UnicodeDecodeError or RecursionError was no error of this API (a task could not
    tell it from a bug), and rows that can never decode were waited on as if cut off."""
    with pytest.raises(MrsDeployProtocolError, match=message):
        streamed(body, [31, 64])
