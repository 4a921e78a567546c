"""``RetryPolicy.arun``: the async retry loop the hook uses for every call on the event loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from airflow_provider.api import MrsDeployConnectionError, MrsDeployTransientError
from airflow_provider.api.errors import MrsDeployApiError
from airflow_provider.hooks.retry import RetryPolicy

POLICY = RetryPolicy(max_retries=2, min_wait=0.001, max_wait=0.002, log=logging.getLogger("t"))


class Attempts:
    """Fails with the given errors in turn, then answers ``"ok"``; counts the attempts."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.count = 0

    async def __call__(self) -> str:
        self.count += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def busy(retry_after: float | None = None) -> MrsDeployTransientError:
    return MrsDeployTransientError("busy", status_code=503, retry_after=retry_after)


def test_retries_until_success_and_logs_each_retry(caplog: pytest.LogCaptureFixture) -> None:
    attempts = Attempts(busy(), MrsDeployConnectionError("reset"))
    with caplog.at_level(logging.WARNING, logger="t"):
        assert asyncio.run(POLICY.arun(attempts)) == "ok"
    assert attempts.count == 3
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("Attempt 1 of 3 failed: 503: busy; retrying in")
    assert lines[0].endswith("(backoff)")


def test_gives_up_after_max_retries_with_the_last_error() -> None:
    attempts = Attempts(busy(), busy(), busy(), busy())
    with pytest.raises(MrsDeployTransientError):
        asyncio.run(POLICY.arun(attempts))
    assert attempts.count == 3


def test_other_errors_are_raised_at_once() -> None:
    attempts = Attempts(MrsDeployApiError("bad request", status_code=400))
    with pytest.raises(MrsDeployApiError):
        asyncio.run(POLICY.arun(attempts))
    assert attempts.count == 1


def test_not_idempotent_requests_are_retried_only_when_not_sent() -> None:
    sent = Attempts(MrsDeployConnectionError("reset", may_have_been_sent=True))
    with pytest.raises(MrsDeployConnectionError):
        asyncio.run(POLICY.arun(sent, idempotent=False))
    assert sent.count == 1
    never_sent = Attempts(MrsDeployConnectionError("refused", may_have_been_sent=False))
    assert asyncio.run(POLICY.arun(never_sent, idempotent=False)) == "ok"


def test_retry_after_is_honoured(caplog: pytest.LogCaptureFixture) -> None:
    attempts = Attempts(busy(retry_after=0.05))

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await POLICY.arun(attempts)
        return loop.time() - started

    with caplog.at_level(logging.WARNING, logger="t"):
        assert asyncio.run(timed()) >= 0.05
    assert "(Retry-After 0.05 s)" in caplog.records[0].getMessage()


def test_the_gate_is_held_per_attempt_never_while_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []

    class Gate:
        async def __aenter__(self) -> None:
            events.append("enter")

        async def __aexit__(self, *exc: Any) -> None:
            events.append("exit")

    real_sleep = asyncio.sleep

    async def recording_sleep(delay: float, *args: Any) -> Any:
        events.append("sleep")
        return await real_sleep(delay, *args)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    attempts = Attempts(busy())
    assert asyncio.run(POLICY.arun(attempts, gate=Gate())) == "ok"
    assert events == ["enter", "exit", "sleep", "enter", "exit"]
