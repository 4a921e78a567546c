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

#: Text that could fool a cut: rows' punctuation, escapes, a lone surrogate (JSON escapes it,
#: msgspec refuses it, the whole-answer parser accepts it).
TRICKY_TEXT = ['},{"success":false}', "]}", '"\\', "é😀", "a\nb", "", "{[", "x" * 300, "a\udc80"]

texts = st.one_of(st.sampled_from(TRICKY_TEXT), st.text(max_size=30))
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
    st.lists(st.integers(), max_size=4),
    st.dictionaries(texts, st.integers(), max_size=3),
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
