"""The retry loops of the sync path and the async path (the same loop, twice).

Which failures are retried and how long to wait are the protocol's decisions
(:class:`~airflow_provider.api.retry.RetryRules`); this adds the connection's settings and the
loops that make the attempts and sleep. Inside a wait's deadline
(:mod:`airflow_provider.waiting.deadlines`) the loops pass the time left to those decisions,
so no wait runs past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from airflow_provider.api.logs import LogLike
from airflow_provider.api.retry import MAX_RETRY_AFTER, NOT_ACTED_ON_STATUSES, RetryRules
from airflow_provider.hooks.settings import MrsDeployConnectionSettings
from airflow_provider.waiting.deadlines import time_left

__all__ = ["MAX_RETRY_AFTER", "NOT_ACTED_ON_STATUSES", "RetryPolicy", "RetryRules"]

T = TypeVar("T")


class RetryPolicy(RetryRules):
    """The retry rules of a connection, with the loops that apply them.

    :param max_retries: retries after the first attempt.
    :param min_wait: lower bound of the backoff, seconds.
    :param max_wait: upper bound of the backoff, seconds.
    :param log: where each retry is logged (reason and wait, never credentials).
    """

    @classmethod
    def from_settings(cls, settings: MrsDeployConnectionSettings, log: LogLike) -> RetryPolicy:
        """Build the policy of a connection.

        :param settings: connection settings.
        :param log: logger for retry messages.
        """
        return cls(settings.max_retries, settings.retry_min_wait, settings.retry_max_wait, log)

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
                wait = self.next_wait(
                    error, number, attempts, idempotent=idempotent, left=time_left()
                )
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
                wait = self.next_wait(
                    error, number, attempts, idempotent=idempotent, left=time_left()
                )
                if wait is None:
                    raise
            await asyncio.sleep(wait)
            number += 1
