"""Retry decisions: which failures are worth another attempt, and how long to wait first.

Retried: connection failures and timeouts, 408, 429, 502, 503, 504 and other 5xx, a bounded
number of times with jittered exponential backoff, or after exactly ``Retry-After`` when the
server sent one (capped). Not retried: other 4xx (the request is wrong; the server's message is
raised at once), 401 (handled by one token renewal in the call flow), TLS verification failures.

Inside a deadline no wait runs past it: the backoff is cut to the time left, and a
``Retry-After`` that ends after the deadline ends the retries at once (the server said it will
not be ready in time). The caller says how much time is left; nothing here reads a clock.

Starting a batch is not idempotent: it is only retried when the server cannot have acted on the
first attempt (connection never established, or 408/429/503), so a retry never starts a second
batch.

These are decisions only: the loops that make the attempts and sleep belong to the transports.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from airflow_provider.api.errors import (
    MrsDeployApiError,
    MrsDeployConnectionError,
    MrsDeployServerError,
    MrsDeployTransientError,
)
from airflow_provider.api.logs import LogLike

#: Longest ``Retry-After`` honoured; a larger value is shortened to this.
MAX_RETRY_AFTER = 300.0

#: Statuses meaning the server did not act on the request, so even a batch start may be resent.
NOT_ACTED_ON_STATUSES = frozenset({408, 429, 503})


@dataclass(frozen=True)
class RetryRules:
    """When to retry and how long to wait.

    :param max_retries: retries after the first attempt.
    :param min_wait: lower bound of the backoff, seconds.
    :param max_wait: upper bound of the backoff, seconds.
    :param log: where each retry is logged (reason and wait, never credentials).
    """

    max_retries: int
    min_wait: float
    max_wait: float
    log: LogLike = field(compare=False, repr=False)

    def should_retry(self, error: BaseException, *, idempotent: bool = True) -> bool:
        """Whether ``error`` is worth another attempt.

        :param error: what the last attempt raised.
        :param idempotent: whether the request may safely be performed twice.
        """
        if isinstance(error, MrsDeployConnectionError):
            return error.retryable and (idempotent or not error.may_have_been_sent)
        if isinstance(error, (MrsDeployTransientError, MrsDeployServerError)):
            return idempotent or error.status_code in NOT_ACTED_ON_STATUSES
        return False

    def wait_seconds(self, error: BaseException | None, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``.

        :param error: what the last attempt raised.
        :param attempt: number of attempts made so far (1 after the first).
        """
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)):
            return min(max(0.0, float(retry_after)), MAX_RETRY_AFTER)
        # "Full jitter": uniform between the floor and an exponentially growing ceiling.
        ceiling = (self.min_wait or 0.1) * 2.0 ** min(attempt - 1, 60)
        ceiling = max(self.min_wait, min(ceiling, self.max_wait))
        return random.uniform(self.min_wait, ceiling)

    def next_wait(
        self,
        error: BaseException,
        number: int,
        attempts: int,
        *,
        idempotent: bool,
        left: float | None,
    ) -> float | None:
        """Seconds to wait before trying again after attempt ``number`` failed, or None to
        give up (and raise ``error``).

        :param error: what the attempt raised.
        :param number: attempts made so far.
        :param attempts: attempts allowed.
        :param idempotent: whether the request may safely be performed twice.
        :param left: seconds until the deadline of the calls in progress (negative once
            passed), or None without one.
        """
        if number >= attempts or not self.should_retry(error, idempotent=idempotent):
            return None
        wait = self.wait_seconds(error, number)
        if left is not None:
            retry_after = getattr(error, "retry_after", None)
            if left <= 0 or (retry_after is not None and wait > left):
                return None
            wait = min(wait, left)
        self._log_attempt(number, attempts, error, wait)
        return wait

    def _log_attempt(
        self, number: int, attempts: int, error: BaseException | None, wait: float
    ) -> None:
        """The one line logged before each retry (reason and wait, never credentials)."""
        if isinstance(error, MrsDeployApiError) and error.retry_after is not None:
            why = f"Retry-After {error.retry_after:g} s"
        else:
            why = "backoff"
        self.log.warning(
            "Attempt %d of %d failed: %s; retrying in %.1f s (%s)",
            number,
            attempts,
            error,
            wait,
            why,
        )
