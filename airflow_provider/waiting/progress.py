"""One evaluation of batch status, shared by the sensor's poke, the trigger and the operators.

Poke mode, deferrable mode and ``wait_for_completion`` must never disagree about whether a batch
is done, so they all reduce the server's answers to a :class:`BatchProgress` here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from airflow_provider.api import (
    BatchStatus,
    MrsDeployConnectionError,
    MrsDeployServerError,
    MrsDeployTransientError,
)


class BatchOutcome(str, Enum):
    """What a set of batches amounts to, from the waiting task's point of view."""

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True)
class BatchProgress:
    """Progress of one or more batches that together make up a submission."""

    outcome: BatchOutcome
    completed: int
    total: int
    failed_batch_ids: tuple[str, ...] = ()

    @property
    def fraction(self) -> float:
        """Share of rows finished, 0..1 (an empty submission counts as finished)."""
        return 1.0 if self.total == 0 else self.completed / self.total

    def describe(self) -> str:
        """A short human line such as ``12/32 rows (37.5%)``."""
        return f"{self.completed}/{self.total} rows ({self.fraction:.1%})"


def evaluate_batches(batch_ids: Sequence[str], statuses: Sequence[BatchStatus]) -> BatchProgress:
    """Reduce the statuses of ``batch_ids`` (same order) to one outcome.

    Any failed batch fails the whole submission; it is complete only when every batch is.
    """
    if len(batch_ids) != len(statuses):
        raise ValueError("batch_ids and statuses must have the same length")
    failed = tuple(bid for bid, st in zip(batch_ids, statuses, strict=True) if st.is_failed)
    completed = sum(st.completed_item_count for st in statuses)
    total = sum(st.total_item_count for st in statuses)
    if failed:
        outcome = BatchOutcome.FAILED
    elif all(st.is_terminal for st in statuses):
        outcome = BatchOutcome.COMPLETE
    else:
        outcome = BatchOutcome.RUNNING
    return BatchProgress(outcome, completed, total, failed)


@dataclass
class RateEstimator:
    """Rows per second and time left, from the first and latest observation.

    Kept deliberately simple: a long batch's rate is stable, and the first observation is taken
    when waiting starts, so the figure reflects what this wait has seen.
    """

    first_time: float | None = None
    first_completed: int = 0

    def observe(self, now: float, progress: BatchProgress) -> tuple[float | None, float | None]:
        """Record an observation; return (rows per second, seconds left) when known."""
        if self.first_time is None:
            self.first_time, self.first_completed = now, progress.completed
            return None, None
        elapsed = now - self.first_time
        done = progress.completed - self.first_completed
        if elapsed <= 0 or done <= 0:
            return None, None
        rate = done / elapsed
        remaining = max(progress.total - progress.completed, 0)
        return rate, remaining / rate

    @staticmethod
    def format(rate: float | None, eta: float | None) -> str:
        """Render the rate and ETA for a log line."""
        if rate is None or eta is None or math.isinf(eta):
            return "rate unknown yet"
        return f"{rate:.1f} rows/s, ETA {eta:.0f}s"


def is_transient_poll_error(error: BaseException) -> bool:
    """Whether a failed poll should be tried again later rather than end the wait.

    The hook has already retried these; a long wait still outlives them (a proxy restarting,
    a server under load, a dropped connection). A TLS verification failure will not heal.
    """
    if isinstance(error, MrsDeployConnectionError):
        return error.retryable
    return isinstance(error, (MrsDeployTransientError, MrsDeployServerError, OSError))
