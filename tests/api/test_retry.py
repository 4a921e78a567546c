"""Retry decisions against a deadline given as a plain value (seconds left, or None).

The loops that sleep are tested with the hook (``tests/hooks``); these are the decisions.
"""

from __future__ import annotations

import logging

from airflow_provider.api import MrsDeployConnectionError, MrsDeployTransientError
from airflow_provider.api.retry import RetryRules

RULES = RetryRules(max_retries=3, min_wait=1.0, max_wait=8.0, log=logging.getLogger("t"))
DROPPED = MrsDeployConnectionError("reset")


def _busy(retry_after: float) -> MrsDeployTransientError:
    return MrsDeployTransientError("busy", status_code=503, retry_after=retry_after)


def test_without_a_deadline_the_backoff_is_kept() -> None:
    wait = RULES.next_wait(DROPPED, 1, 4, idempotent=True, left=None)
    assert wait is not None and 1.0 <= wait <= 8.0


def test_the_backoff_is_cut_to_the_time_left() -> None:
    assert RULES.next_wait(DROPPED, 3, 4, idempotent=True, left=0.25) == 0.25


def test_no_retry_once_the_deadline_has_passed() -> None:
    assert RULES.next_wait(DROPPED, 1, 4, idempotent=True, left=0.0) is None


def test_a_retry_after_past_the_deadline_ends_the_retries() -> None:
    assert RULES.next_wait(_busy(30), 1, 4, idempotent=True, left=10.0) is None
    assert RULES.next_wait(_busy(2), 1, 4, idempotent=True, left=10.0) == 2.0


def test_no_retry_after_the_last_attempt() -> None:
    assert RULES.next_wait(DROPPED, 4, 4, idempotent=True, left=None) is None
