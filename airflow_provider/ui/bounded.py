"""A few threads of the page's own for its blocking fetches, and a refusal when all are busy.

Airflow's API server runs its own synchronous routes in one thread pool that every sync route
of the process shares (Starlette's, 40 threads by default). A page fetch waits on a server
outside Airflow, for seconds when that server is slow; in the shared pool a handful of page
loads aimed at a server that never answers took every thread, and Airflow's own API stopped
answering. So the page's fetches run here instead: in a pool of their own, at most ``limit``
at once, and a fetch asked for while all are busy is refused at once rather than queued
(a queue would only turn a stalled server into a longer wait for every reader of the page).
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class BoundedRunner:
    """Runs blocking calls in threads of its own, at most ``limit`` at once.

    A call holds its slot until it has returned, not until its caller stops waiting: a caller
    that gives up on a call that overran cannot let more calls pile up behind it.

    :param limit: calls that may run at once (and threads of the pool).
    :param name: prefix of the pool's thread names (seen in thread dumps).
    """

    def __init__(self, limit: int, name: str) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix=name)

    def try_submit(
        self, call: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T] | None:
        """Start ``call(*args, **kwargs)`` in the pool, or None when ``limit`` calls run.

        The call runs in a copy of the caller's context (as Starlette's own thread pool does),
        so context variables of the request are seen by the call.

        :param call: the blocking call.
        """
        if not self._slots.acquire(blocking=False):
            return None
        bound = functools.partial(call, *args, **kwargs)
        try:
            future = self._pool.submit(contextvars.copy_context().run, bound)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._release)
        return future

    def _release(self, _done: Future[T]) -> None:
        self._slots.release()
