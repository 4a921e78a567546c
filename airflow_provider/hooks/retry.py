"""The retry policy shared by the sync path (tenacity) and the async path (a plain loop).

Retried: connection failures and timeouts, 408, 429, 502, 503, 504 and other 5xx, a bounded
number of times with jittered exponential backoff, or after exactly ``Retry-After`` when the
server sent one (capped). Not retried: other 4xx (the request is wrong; the server's message is
raised at once), 401 (handled by one token renewal in the call flow), TLS verification failures.

Starting a batch is not idempotent: it is only retried when the server cannot have acted on the
first attempt (connection never established, or 408/429/503), so a retry never starts a second
batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from airflow_provider.api.errors import (
    MrsDeployApiError,
    MrsDeployConnectionError,
    MrsDeployServerError,
    MrsDeployTransientError,
)
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
        backoff = wait_random_exponential(
            multiplier=self.min_wait or 0.1, min=self.min_wait, max=self.max_wait
        )
        return float(backoff(_state_for(attempt)))

    def _kwargs(self, idempotent: bool, retries: int) -> dict[str, Any]:
        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return self.wait_seconds(error, state.attempt_number)

        return {
            "stop": stop_after_attempt(retries + 1),
            "wait": wait,
            "retry": retry_if_exception(lambda err: self.should_retry(err, idempotent=idempotent)),
            "before_sleep": self._log_retry(retries + 1),
            "reraise": True,
        }

    def _log_retry(self, attempts: int) -> Any:
        def log_it(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            self._log_attempt(state.attempt_number, attempts, error, wait)

        return log_it

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

    def sync(self, *, idempotent: bool = True, replayable: bool = True) -> Retrying:
        """A tenacity ``Retrying`` for one blocking call.

        :param idempotent: whether the request may safely be performed twice.
        :param replayable: False when the body can be sent only once (no retry at all).
        """
        return Retrying(**self._kwargs(idempotent, self.max_retries if replayable else 0))

    async def arun(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        idempotent: bool = True,
        gate: AbstractAsyncContextManager[Any] | None = None,
    ) -> T:
        """Await ``attempt()`` until it succeeds or the policy gives up (then its error is raised).

        The same rules, waits and log lines as :meth:`sync`, on the event loop (it sleeps with
        asyncio), but a plain loop rather than tenacity's ``AsyncRetrying``: nearly every call
        succeeds at once, and a triggerer polling a thousand batches makes a hundred calls a
        second. Tenacity's per-call retry state (closures, a thread-local, reference cycles)
        would be garbage only the cyclic collector frees, and collections stop the loop.

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
                if number >= attempts or not self.should_retry(error, idempotent=idempotent):
                    raise
                wait = self.wait_seconds(error, number)
                self._log_attempt(number, attempts, error, wait)
            await asyncio.sleep(wait)
            number += 1


class _AttemptState:
    """The one attribute tenacity's wait strategies read from a retry state."""

    def __init__(self, attempt_number: int):
        self.attempt_number = attempt_number


def _state_for(attempt: int) -> Any:
    return _AttemptState(attempt)
