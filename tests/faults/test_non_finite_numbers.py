"""``NaN``, ``Infinity`` and numbers no float holds (``1e400``) in an answer: JSON has no such
values, and the strict decoder of the streamed results refused them, while an answer read whole
(any answer whose head the streamed reader declines) took them, and Collect wrote ``null``,
``inf`` or an empty cell in their place, depending on the format. One rule now: refused, on
every path, before anything is written."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.api import MrsDeployProtocolError
from airflow_provider.api.parsers import decode_json
from airflow_provider.hooks import MrsDeployHook
from tests.faults.crafted import MT, CraftedServer
from tests.faults.helpers import collect

ROW = '{{"success": true, "outputParameters": {{"answer": {value}}}}}'


def answer(value: str, head: str = "") -> bytes:
    """A complete one-row status whose row's output is ``value`` (JSON text as written);
    ``head`` adds fields before the rows (one the streamed reader declines sends the answer to
    the whole-answer parser)."""
    row = ROW.format(value=value)
    return (
        f'{{"state": "Complete", "completedItemCount": 1, "totalItemCount": 1{head}, '
        f'"batchExecutionResults": [{row}]}}'
    ).encode()


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_the_whole_answer_decoder_refuses_what_json_cannot_hold(text: str) -> None:
    with pytest.raises(MrsDeployProtocolError, match="is not valid JSON"):
        decode_json(f'{{"a": [1.5, {text}]}}'.encode())


def test_large_and_small_finite_numbers_are_read_exactly() -> None:
    assert decode_json(b"[1.7976931348623157e308, 5e-324, -0.0, 1e-400]") == [
        1.7976931348623157e308,
        5e-324,
        -0.0,
        0.0,
    ]


LAYOUTS = {"streamed": "", "read whole": ', "note": "\\ud800"'}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("value", ["1e400", "NaN"])
@pytest.mark.parametrize("output_format", ["jsonl", "csv", "parquet"])
def test_collect_refuses_them_before_writing_whatever_the_layout(
    crafted: CraftedServer,
    task_context: Any,
    tmp_path: Path,
    layout: str,
    value: str,
    output_format: str,
) -> None:
    crafted.answers.status = answer(value, layout)
    destination = tmp_path / "out"
    with pytest.raises(MrsDeployProtocolError, match="not valid JSON"):
        collect(task_context, "b1", destination, output_format=output_format, include_files=False)
    assert not destination.exists() or not any(destination.iterdir())


@pytest.mark.parametrize("path", ["sync", "async"])
def test_get_batch_status_refuses_them_on_both_paths(crafted: CraftedServer, path: str) -> None:
    """What a repair reads its replacing batches with."""
    crafted.answers.status = answer("Infinity")
    hook = MrsDeployHook()

    async def in_loop() -> Any:
        try:
            return await hook.aget_batch_status(*MT, "b1")
        finally:
            await hook.aclose()

    with pytest.raises(MrsDeployProtocolError, match="Infinity is not a JSON value"):
        if path == "sync":
            try:
                hook.get_batch_status(*MT, "b1")
            finally:
                hook.close()
        else:
            asyncio.run(in_loop())
