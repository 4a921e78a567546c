"""Files that come inline in a result (``outputFiles``): base64 or a protocol error naming the
row and file, never a raw ``binascii.Error`` and never a quietly different file."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider.api import (
    ExecutionResult,
    MrsDeployProtocolError,
    parse_batch_status,
    parse_batch_status_body,
)
from airflow_provider.api.models import base64_problem, decode_output_file


@given(st.binary(max_size=600), st.sampled_from(["plain", "mime"]))
def test_any_file_round_trips(content: bytes, layout: str) -> None:
    text = (base64.b64encode if layout == "plain" else base64.encodebytes)(content).decode()
    assert base64_problem(text) is None
    assert decode_output_file(text, "row 0, file 'a'") == content


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("aGVsbG8h!!!", "'!', which is not in the base64 alphabet"),
        ("aGV-bG8_", "'-', which is not in the base64 alphabet"),
        ("aGVsbG8", "not a multiple of 4"),
        ("aG==VsbG8=", "padding before its end"),
        ("aGVsbA===", "more than two '=' padding"),
        ("aGVs\x1bbG8=", "'\\x1b', which is not in the base64 alphabet"),
        ("aGVs\u00e9bG8=", "'é', which is not in the base64 alphabet"),
    ],
)
def test_text_that_is_not_base64_is_refused_naming_the_row_and_file(text: str, words: str) -> None:
    assert words in (base64_problem(text) or "")
    with pytest.raises(MrsDeployProtocolError) as info:
        decode_output_file(text, "row 7, file 'plot.png'")
    message = str(info.value)
    assert message.startswith("row 7, file 'plot.png': the file's content is not base64")
    assert all(char.isprintable() for char in message)


def test_a_consume_answer_with_a_bad_file_is_refused() -> None:
    with pytest.raises(MrsDeployProtocolError, match=r"execution result: output file 'a\.png'"):
        ExecutionResult.from_json({"success": True, "outputFiles": {"a.png": "@@"}})


@given(st.integers(0, 3), st.sampled_from(["%%%", "abc", "a=bc", 12]))
def test_both_status_parsers_refuse_alike(row: int, content: object) -> None:
    """The typed fast path and the generic parser give the same verdict and message."""
    good = {"success": True, "outputFiles": {"ok.txt": "b2s="}}
    rows = [good] * 4
    rows[row] = {"success": True, "outputFiles": {"ok.txt": "b2s=", "bad.bin": content}}
    status = {"state": "Complete", "completedItemCount": 4, "totalItemCount": 4}
    status["batchExecutionResults"] = rows  # type: ignore[assignment]
    with pytest.raises(MrsDeployProtocolError) as fast:
        parse_batch_status_body(json.dumps(status).encode())
    with pytest.raises(MrsDeployProtocolError) as generic:
        parse_batch_status(status)
    assert str(fast.value) == str(generic.value)
    assert f"batch status: row {row}: output file 'bad.bin' is not base64" in str(fast.value)
