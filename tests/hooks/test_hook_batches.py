"""Batch calls against the reference server: start, list, status, files, cancel."""

from __future__ import annotations

import pytest

from airflow_provider.api import (
    ExecutionResult,
    MrsDeployBatchState,
    MrsDeployError,
    MrsDeployIndexError,
    MrsDeployNotFoundError,
)
from airflow_provider.hooks import MrsDeployHook
from tests.hooks.helpers import DOC_ANSWER, ECHO, MT, encode, mtcars_records, wait_terminal
from tests.support.server import ReferenceServer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_full_batch_lifecycle(hook: MrsDeployHook) -> None:
    records = [{"hp": 120.0, "wt": 2.8}, *mtcars_records()]
    batch_id = hook.start_batch(*MT, encode(records), parallel_count=4)
    assert batch_id in hook.list_batches(*MT)

    status = wait_terminal(hook, MT, batch_id)
    assert status.state is MrsDeployBatchState.COMPLETE
    assert (status.completed_item_count, status.total_item_count) == (33, 33)
    assert status.progress == 1.0
    assert len(status.results) == 33
    assert all(row.success for row in status.results)
    assert status.results[0].output_parameters["answer"] == pytest.approx(DOC_ANSWER, abs=1e-6)
    assert status.to_summary() == {
        "state": "Complete",
        "completed_item_count": 33,
        "total_item_count": 33,
    }

    # Row results by 0-based position, in input order.
    assert hook.get_execution(*MT, batch_id, 0) == status.results[0]
    assert hook.get_execution(*MT, batch_id, 32) == status.results[32]
    with pytest.raises(MrsDeployIndexError, match="out of range"):
        hook.get_execution(*MT, batch_id, 33)

    # Files of a row: listed, streamed in several chunks, or read at once.
    assert sorted(hook.list_batch_files(*MT, batch_id, 0)) == ["answer.csv", "answer.png"]
    chunks = list(hook.iter_batch_file(*MT, batch_id, 0, "answer.png", chunk_size=16))
    assert len(chunks) > 1
    assert b"".join(chunks).startswith(PNG_SIGNATURE)
    csv_text = hook.get_batch_file(*MT, batch_id, 0, "answer.csv").decode()
    assert csv_text.startswith("hp,wt,answer")
    assert "0.6418125" in csv_text
    assert hook.list_batch_files(*MT, batch_id, 999) == []
    with pytest.raises(MrsDeployNotFoundError):
        hook.get_batch_file(*MT, batch_id, 0, "missing.txt")

    # Cancel deletes; cancelling again is not an error.
    hook.cancel_batch(*MT, batch_id)
    assert batch_id not in hook.list_batches(*MT)
    with pytest.raises(MrsDeployNotFoundError):
        hook.get_batch_status(*MT, batch_id)
    hook.cancel_batch(*MT, batch_id)


def test_stream_closed_when_iteration_stops_early(hook: MrsDeployHook) -> None:
    batch_id = hook.start_batch(*MT, encode([{"hp": 120, "wt": 2.8}]))
    wait_terminal(hook, MT, batch_id)
    chunks = hook.iter_batch_file(*MT, batch_id, 0, "answer.png", chunk_size=8)
    assert next(chunks) == PNG_SIGNATURE
    chunks.close()
    # The pooled connection was released: the next call on the same session works.
    assert hook.list_batch_files(*MT, batch_id, 0)
    hook.cancel_batch(*MT, batch_id)


def test_chunked_bodies(hook: MrsDeployHook) -> None:
    records = mtcars_records()[:5]

    def chunks() -> list[bytes]:
        body = encode(records)
        return [body[i : i + 7] for i in range(0, len(body), 7)]

    from_callable = hook.start_batch(*MT, chunks, parallel_count=2)
    from_generator = hook.start_batch(*MT, (chunk for chunk in chunks()))
    for batch_id in (from_callable, from_generator):
        status = wait_terminal(hook, MT, batch_id)
        assert (status.state, status.total_item_count) == (MrsDeployBatchState.COMPLETE, 5)
        hook.cancel_batch(*MT, batch_id)


def test_failed_rows_are_reported_per_row(hook: MrsDeployHook) -> None:
    records = [{"text": "ok", "n": 2}, {"text": "fail", "n": 1}, {"text": "x", "n": 1}]
    batch_id = hook.start_batch(*ECHO, encode(records))
    status = wait_terminal(hook, ECHO, batch_id)
    assert status.state is MrsDeployBatchState.COMPLETE
    assert [row.success for row in status.results] == [True, False, True]
    assert status.results[1].error_message
    assert status.results[0].output_parameters["echo"] == "ok ok"
    assert hook.get_execution(*ECHO, batch_id, 1).success is False
    hook.cancel_batch(*ECHO, batch_id)


def test_running_batch_cancel_and_early_results(
    hook: MrsDeployHook, reference_server: ReferenceServer
) -> None:
    records = [{"text": "slow", "n": 1}] * 6
    with reference_server.faults(service="echoService", rowDelaySeconds=1.0):
        batch_id = hook.start_batch(*ECHO, encode(records), parallel_count=1)
        status = hook.get_batch_status(*ECHO, batch_id, show_partial_results=True)
        assert not status.is_terminal
        assert status.total_item_count == 6
        with pytest.raises(MrsDeployError, match="available once it is complete"):
            hook.get_execution(*ECHO, batch_id, 0)
        hook.cancel_batch(*ECHO, batch_id)
    with pytest.raises(MrsDeployNotFoundError):
        hook.get_batch_status(*ECHO, batch_id)


def test_unknown_batch(hook: MrsDeployHook) -> None:
    with pytest.raises(MrsDeployNotFoundError):
        hook.get_batch_status(*MT, "00000000-0000-0000-0000-000000000000")
    hook.cancel_batch(*MT, "00000000-0000-0000-0000-000000000000")


def test_the_servers_status_answers_decode_straight_into_results(
    hook: MrsDeployHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference server's answers are spelled as documented: the typed decode reads them
    without the generic decoder (which would be the slower fallback)."""
    from airflow_provider.api import parsers

    records = mtcars_records()[:5]
    batch_id = hook.start_batch(*MT, encode(records), parallel_count=2)
    wait_terminal(hook, MT, batch_id)

    def refuse(*_: object) -> None:
        raise AssertionError("the generic decoder was used")

    monkeypatch.setattr(parsers, "decode_json", refuse)
    status = hook.get_batch_status(*MT, batch_id)
    assert len(status.results) == 5 and all(r.success for r in status.results)
    assert all(r.changed_files for r in status.results)
    assert status.results[0].output_parameters["answer"] > 0
    hook.cancel_batch(*MT, batch_id)


def test_a_batch_read_as_it_arrives_gives_every_row_of_the_whole_answer(
    hook: MrsDeployHook,
) -> None:
    batch_id = hook.start_batch(*MT, encode(mtcars_records()))
    wait_terminal(hook, MT, batch_id)
    whole = hook.get_batch_status(*MT, batch_id)
    chunks: list[list[ExecutionResult]] = []
    status = hook.read_batch_results(*MT, batch_id, chunks.append)
    assert status.results == () and status.state == whole.state
    assert (status.completed_item_count, status.total_item_count) == (32, 32)
    assert tuple(row for chunk in chunks for row in chunk) == whole.results
    assert all(chunks)
