"""Progress lines: bounded in number, with rate and time left."""

from __future__ import annotations

import logging

import pytest

from airflow_provider.outputs import ProgressLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_come_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    logger = logging.getLogger("progress-test")
    progress = ProgressLog("files landed", 50_000, logger, interval=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="progress-test"):
        for second in range(1, 70):
            clock.now = 100.0 + second
            progress.advance(100)  # 100 files a second for 69 s
        progress.finish()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 7  # at 10, 20, ... 60 s, and the closing line
    assert lines[0] == "1,000 of 50,000 files landed (2.0%), 100/s, about 8m10s left"
    assert lines[-1].startswith("6,900 of 50,000 files landed (13.8%), 100/s")


def test_an_empty_collect_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("progress-test")
    with caplog.at_level(logging.INFO, logger="progress-test"):
        ProgressLog("files landed", 0, logger).finish()
    assert caplog.records == []


def test_hours_are_written_as_hours() -> None:
    clock = Clock()
    progress = ProgressLog("rows", 1_000_000, logging.getLogger("x"), clock=clock)
    clock.now += 10
    progress.advance(100)
    assert progress.line().endswith("about 27h46m left")
