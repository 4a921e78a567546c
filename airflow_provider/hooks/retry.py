"""The retry policy shared by the sync path and the async path (the same loop, twice).

Retried: connection failures and timeouts, 408, 429, 502, 503, 504 and other 5xx, a bounded
number of times with jittered exponential backoff, or after exactly ``Retry-After`` when the
server sent one (capped). Not retried: other 4xx (the request is wrong; the server's message is
raised at once), 401 (handled by one token renewal in the call flow), TLS verification failures.

Inside a wait's deadline (:mod:`airflow_provider.deadlines`) no wait runs past it: the
backoff is cut to the time left, and a ``Retry-After`` that ends after the deadline ends the
retries at once (the server said it will not be ready in time).

Starting a batch is not idempotent: it is only retried when the server cannot have acted on the
first attempt (connection never established, or 408/429/503), so a retry never starts a second
batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from airflow_provider.api.errors import (
    MrsDeployApiError,
    MrsDeployConnectionError,
    MrsDeployServerError,
    MrsDeployTransientError,
)
from airflow_provider.deadlines import time_left
from airflow_provider.hooks.logs import LogLike
from airflow_provider.hooks.settings import MrsDeployConnectionSettings

#: Longest ``Retry-After`` honoured; a larger value is shortened to this.
MAX_RETRY_AFTER = 300.0

#: Statuses meaning the server did not act on the request, so even a batch start may be resent.
NOT_ACTED_ON_STATUSES = frozenset({408, 429, 503})

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
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

    @classmethod
    def from_settings(cls, settings: MrsDeployConnectionSettings, log: LogLike) -> RetryPolicy:
        """Build the policy of a connection.

        :param settings: connection settings.
        :param log: logger for retry messages.
        """
        return cls(settings.max_retries, settings.retry_min_wait, settings.retry_max_wait, log)

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
        self, error: BaseException, number: int, attempts: int, *, idempotent: bool
    ) -> float | None:
        """Seconds to wait before trying again after attempt ``number`` failed, or None to
        give up (and raise ``error``).

        :param error: what the attempt raised.
        :param number: attempts made so far.
        :param attempts: attempts allowed.
        :param idempotent: whether the request may safely be performed twice.
        """
        if number >= attempts or not self.should_retry(error, idempotent=idempotent):
            return None
        wait = self.wait_seconds(error, number)
        left = time_left()
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

    def run(
        self, attempt: Callable[[], T], *, idempotent: bool = True, replayable: bool = True
    ) -> T:
        """Call ``attempt()`` until it succeeds or the policy gives up (then its error is raised).

        :param attempt: makes one attempt.
        :param idempotent: whether the request may safely be performed twice.
        :param replayable: False when the body can be sent only once (no retry at all).
        """
        attempts = self.max_retries + 1 if replayable else 1
        number = 1
        while True:
            try:
                return attempt()
            except Exception as error:
                wait = self.next_wait(error, number, attempts, idempotent=idempotent)
                if wait is None:
                    raise
            time.sleep(wait)
            number += 1

    async def arun(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        idempotent: bool = True,
        gate: AbstractAsyncContextManager[Any] | None = None,
    ) -> T:
        """Await ``attempt()`` until it succeeds or the policy gives up (then its error is raised).

        The same rules, waits and log lines as :meth:`run`, on the event loop (it sleeps with
        asyncio). A plain loop: nearly every call succeeds at once, and a triggerer polling a
        thousand batches makes a hundred calls a second, so a call must leave no garbage only
        the cyclic collector frees (collections stop the loop).

        :param attempt: makes one attempt.
        :param idempotent: whether the request may safely be performed twice.
        :param gate: entered around each attempt, never around the wait before a retry (a
            semaphore bounding the requests in progress, for instance).
        """
        turn = gate if gate is not None else contextlib.nullcontext()
        attempts = self.max_retries + 1
        number = 1
        while True:
            try:
                async with turn:
                    return await attempt()
            except Exception as error:
                wait = self.next_wait(error, number, attempts, idempotent=idempotent)
                if wait is None:
                    raise
            await asyncio.sleep(wait)
            number += 1
