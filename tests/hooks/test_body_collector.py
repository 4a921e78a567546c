"""How much of an answer is read: the limits, error bodies, and progress reads."""

from __future__ import annotations

import json

import pytest

from airflow_provider.hooks.limits import (
    ERROR_BODY_LIMIT,
    PROGRESS_HEAD_BYTES,
    PROGRESS_SCAN_FROM,
    BodyCollector,
    MrsDeployResponseTooLargeError,
)

ROWS = [{"success": True, "outputParameters": {"answer": i}} for i in range(5_000)]


def feed(collector: BodyCollector, body: bytes, chunk: int = 4096) -> int:
    """Feed ``body`` as a transport would; return how many bytes were read."""
    read = 0
    for start in range(0, len(body), chunk):
        read += len(body[start : start + chunk])
        if collector.add(body[start : start + chunk]):
            break
    return read


def test_a_progress_read_stops_where_the_results_begin() -> None:
    body = json.dumps(
        {
            "state": "Complete",
            "completedItemCount": 5000,
            "totalItemCount": 5000,
            "batchExecutionResults": ROWS,
        }
    ).encode()
    headers = {"Content-Length": str(len(body))}  # announced over the limit: not refused
    collector = BodyCollector(200, headers, 10_000, "GET /b", expect="progress")
    read = feed(collector, body)
    assert PROGRESS_SCAN_FROM <= read < PROGRESS_SCAN_FROM + 4096 < len(body)
    assert collector.body() == body[:read]


def test_a_progress_read_of_another_layout_reads_the_whole_answer_within_the_limit() -> None:
    body = json.dumps(
        {
            "batchExecutionResults": ROWS,
            "state": "Complete",
            "completedItemCount": 5000,
            "totalItemCount": 5000,
        }
    ).encode()
    assert len(body) > PROGRESS_HEAD_BYTES
    whole = BodyCollector(200, {}, None, "GET /b", expect="progress")
    assert feed(whole, body) == len(body) and whole.body() == body
    with pytest.raises(MrsDeployResponseTooLargeError):
        feed(BodyCollector(200, {}, 100_000, "GET /b", expect="progress"), body)


def test_a_small_progress_answer_is_read_whole_without_scanning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider.api import limits

    def refuse(head: bytes) -> None:
        raise AssertionError("scanned")

    monkeypatch.setattr(limits, "scan_batch_progress", refuse)
    body = json.dumps(
        {
            "state": "InProgress",
            "completedItemCount": 3,
            "totalItemCount": 9,
            "batchExecutionResults": [],
        }
    ).encode()
    collector = BodyCollector(200, {}, 10_000, "GET /b", expect="progress")
    assert feed(collector, body, chunk=16) == len(body) and collector.body() == body


def test_other_reads_keep_their_rules() -> None:
    body = b"x" * 200_000
    with pytest.raises(MrsDeployResponseTooLargeError):
        BodyCollector(200, {"Content-Length": str(len(body))}, 100_000, "GET /b")
    error = BodyCollector(500, {}, 100_000, "GET /b", expect="progress")
    assert feed(error, body) == ERROR_BODY_LIMIT
    assert len(error.body()) == ERROR_BODY_LIMIT
