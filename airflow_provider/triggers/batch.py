"""The deferrable wait: a thin poller that reports once and decides nothing else."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider.api import (
    MrsDeployError,
)
from airflow_provider.batch_set import BatchSet
from airflow_provider.compat import async_timeout_at
from airflow_provider.safe_text import printable, redacted
from airflow_provider.waiting.deadlines import (
    calls_end_by,
    check_deadline,
    check_interval,
    checks_end_by,
    is_last_check,
)
from airflow_provider.waiting.events import BatchEvent, BatchEventStatus
from airflow_provider.waiting.heap import settle_heap_once
from airflow_provider.waiting.progress import (
    BatchOutcome,
    RateEstimator,
    evaluate_batches,
    is_transient_poll_error,
)
from airflow_provider.waiting.task_state import task_state


def _batch_set_of(
    batch_set: BatchSet | dict[str, Any] | None,
    batch_ids: list[str] | None,
    service_name: str | None,
    service_version: str | None,
) -> BatchSet:
    """The batch set of the trigger's kwargs, in either form (see the class)."""
    if batch_set is None:
        if batch_ids is None or not service_name or not service_version:
            raise ValueError("pass batch_set, or batch_ids with service_name and service_version")
        return BatchSet.of_ids((service_name, service_version), batch_ids)
    return batch_set if isinstance(batch_set, BatchSet) else BatchSet.from_json(batch_set)


@dataclass
class _Seen:
    """What one wait remembers between polls: the last progress and the rate estimate."""

    completed: int = 0
    total: int = 0
    fraction: float = 0.0
    logged: bool = False
    rate: RateEstimator = field(default_factory=RateEstimator)


#: How long one cancel may take in :meth:`MrsDeployBatchTrigger.on_kill`, whose batches are
#: cancelled at once: with the task's state asked first (``task_state.ASK_SECONDS``), within
#: Airflow's default ``[triggerer] on_kill_timeout`` of 30 s.
CANCEL_SECONDS = 20.0

#: Task states in which ``on_kill`` leaves the batches alone, and why.
_KEEP_BATCHES = {
    "deferred": "another triggerer waits for it now",
    "success": "marked successful: its batches are kept for the tasks after it",
}


class MrsDeployBatchTrigger(BaseTrigger):
    """Poll one or more batch executions until all are complete, one failed, or the deadline.

    The trigger may run more than once for the same wait (a triggerer restart re-creates it from
    its kwargs), so it only reads: it never submits, and cancels only from :meth:`on_kill`.

    :param batch_set: The batch set to wait for (its JSON form, or a :class:`BatchSet`).
    :param batch_ids: Instead of ``batch_set`` (triggers serialized by earlier releases): the
        batch execution ids, in submission order, with ``service_name`` and ``service_version``.
    :param service_name: Name of the published service (with ``batch_ids``).
    :param service_version: Version of the published service (with ``batch_ids``).
    :param mrsdeploy_conn_id: Connection to the R Server / ML Server web node.
    :param poll_interval: Seconds between polls while the batch is well under way.
    :param deadline: Absolute wall-clock deadline (epoch seconds) or None to wait forever.
    :param max_poll_interval: Upper bound of the poll interval while a batch is far from done;
        the interval grows from ``poll_interval`` towards it and never past the deadline.
    :param cancel_on_kill: Cancel the batches when a user marks the deferred task failed or
        clears it (Airflow 3.3 and later; not when it is marked successful).
    """

    def __init__(
        self,
        *,
        batch_set: BatchSet | dict[str, Any] | None = None,
        batch_ids: list[str] | None = None,
        service_name: str | None = None,
        service_version: str | None = None,
        mrsdeploy_conn_id: str = "mrsdeploy_default",
        poll_interval: float = 10.0,
        deadline: float | None = None,
        max_poll_interval: float | None = None,
        cancel_on_kill: bool = True,
    ) -> None:
        super().__init__()
        # As given: what serialize() hands back when they cannot be used, so that a re-created
        # trigger reports the same problem.
        self._given: dict[str, Any] = {
            "batch_set": batch_set.to_json() if isinstance(batch_set, BatchSet) else batch_set,
            "batch_ids": batch_ids,
            "service_name": service_name,
            "service_version": service_version,
            "poll_interval": poll_interval,
            "deadline": deadline,
            "max_poll_interval": max_poll_interval,
        }
        self.mrsdeploy_conn_id = mrsdeploy_conn_id
        self.cancel_on_kill = cancel_on_kill
        self.batch_set: BatchSet | None = None
        self.poll_interval = self.max_poll_interval = 10.0
        self.deadline: float | None = None
        #: Why the arguments cannot be used, reported by run() as an error event. Never raised
        #: here: the triggerer re-creates triggers in its main loop, where an exception other
        #: than TypeError stops every other wait it runs.
        self.problem: str | None = None
        try:
            # Only what it polls: see BatchSet.for_polling.
            self.batch_set = _batch_set_of(
                batch_set, batch_ids, service_name, service_version
            ).for_polling()
            self._given["batch_set"] = self.batch_set.to_json()  # even if the rest is unusable
            self.poll_interval = check_interval(poll_interval, "poll_interval")
            # Never faster than poll_interval, whatever the slowest poll was set to.
            self.max_poll_interval = max(
                self.poll_interval,
                self.poll_interval
                if max_poll_interval is None
                else check_interval(max_poll_interval, "max_poll_interval"),
            )
            self.deadline = check_deadline(deadline)
        except Exception as err:  # reported by run(), see above
            self.problem = f"the wait cannot start: {err}"

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and plain-JSON kwargs, exactly the constructor arguments."""
        if self.problem is not None or self.batch_set is None:
            kwargs = {key: value for key, value in self._given.items() if value is not None}
        else:
            kwargs = {
                "batch_set": self.batch_set.to_json(),
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "max_poll_interval": self.max_poll_interval,
            }
        kwargs |= {"mrsdeploy_conn_id": self.mrsdeploy_conn_id}
        kwargs |= {"cancel_on_kill": self.cancel_on_kill}
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    @property
    def batch_ids(self) -> tuple[str, ...]:
        """The ids waited for, in input order (as given, when they cannot be used)."""
        if self.batch_set is not None:
            return self.batch_set.batch_ids
        given = self._given.get("batch_ids")
        if isinstance(given, list):
            return tuple(str(item) for item in given)
        return ()

    @property
    def service_name(self) -> str:
        """The service's name."""
        if self.batch_set is not None:
            return self.batch_set.service_name
        return str(self._given.get("service_name") or "")

    @property
    def service_version(self) -> str:
        """The service's version."""
        if self.batch_set is not None:
            return self.batch_set.service_version
        return str(self._given.get("service_version") or "")

    def _hook(self) -> Any:
        from airflow_provider.hooks import MrsDeployHook

        return MrsDeployHook(self.mrsdeploy_conn_id)

    async def _ahook(self) -> Any:
        """The hook, built on the loop once the hook's module is loaded.

        The first import of the hook's HTTP stack takes a noticeable fraction of a second, so
        it happens in a worker thread. After that, building a hook is cheap: a thread hop for
        each of a thousand triggers starting together would only queue them behind each other.
        """
        if getattr(sys.modules.get("airflow_provider.hooks"), "MrsDeployHook", None) is None:
            return await asyncio.to_thread(self._hook)
        return self._hook()

    def _next_interval(self, fraction_done: float) -> float:
        """Poll slowly while far from done, at ``poll_interval`` when close, never past deadline.

        The fraction is clamped: a server reporting more rows done than in the batch, or fewer
        than before, cannot make the poll faster than ``poll_interval``.
        """
        if not math.isfinite(fraction_done):
            fraction_done = 1.0 if fraction_done > 0 else 0.0  # NaN counts as not started
        fraction_done = min(max(fraction_done, 0.0), 1.0)
        interval = self.poll_interval + (self.max_poll_interval - self.poll_interval) * (
            1.0 - fraction_done
        )
        if self.deadline is not None:
            interval = min(interval, max(self.deadline - time.time(), 0.0))
        return max(interval, 0.0)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until a terminal outcome or the deadline, then yield exactly one event."""
        if self.problem is not None:
            self.log.error("%s", self.problem)
            yield self._event(BatchEventStatus.ERROR, 0, 0, self.problem)
            return
        settle_heap_once()
        hook = await self._ahook()
        seen = _Seen()
        try:
            while True:
                started = time.time()
                event = await self._poll_in_time(hook, seen, started)
                if event is None and is_last_check(self.deadline, started):
                    event = self._deadline_event(seen)
                if event is not None:
                    yield event
                    return
                await asyncio.sleep(self._next_interval(seen.fraction))
        finally:
            await hook.aclose()

    async def _poll_in_time(self, hook: Any, seen: _Seen, started: float) -> TriggerEvent | None:
        """:meth:`_poll`, abandoned at the deadline: a poll hanging on the server (or waiting out
        a ``Retry-After``) cannot hold the wait past it. Requests and retry waits are also cut
        to the time left (:func:`~airflow_provider.waiting.deadlines.calls_end_by`).

        The poll made once the deadline has passed is the wait's last: it gets
        :data:`~airflow_provider.waiting.deadlines.FINAL_CHECK_GRACE` to answer, so a batch that
        finished in time is reported complete rather than timed out (and then cancelled).
        """
        end = checks_end_by(self.deadline, started)
        if end is None:
            return await self._poll(hook, seen)
        loop = asyncio.get_running_loop()
        try:
            with calls_end_by(end):
                async with async_timeout_at(loop.time() + (end - time.time())):
                    return await self._poll(hook, seen)
        except TimeoutError:
            self.log.warning("The deadline passed while polling %s", ",".join(self.batch_ids))
            return None

    async def _poll(self, hook: Any, seen: _Seen) -> TriggerEvent | None:
        """Poll every batch once: the final event, or None while they run.

        Everything a poll builds (statuses, progress) is dropped when it returns, so nothing
        but ``seen`` is held through the sleep between polls: objects alive for seconds end up
        in the collector's oldest generation, and enough of them cause full collections, which
        stop the whole event loop.
        """
        statuses = []
        try:
            for batch_id in self.batch_ids:
                statuses.append(
                    await hook.aget_batch_progress(
                        self.service_name, self.service_version, batch_id
                    )
                )
        except (MrsDeployError, OSError) as exc:
            if not is_transient_poll_error(exc):
                return self._event(BatchEventStatus.ERROR, seen.completed, seen.total, str(exc))
            self.log.warning("Polling batch status failed, will poll again: %s", exc)
            return None
        except Exception as exc:  # a bug or an unforeseen answer: report it, never crash
            self.log.exception("Polling batch status failed unexpectedly")
            message = f"unexpected {type(exc).__name__} while polling: {exc}"
            return self._event(BatchEventStatus.ERROR, seen.completed, seen.total, message)
        progress = evaluate_batches(self.batch_ids, statuses)
        if progress.outcome is not BatchOutcome.RUNNING:
            assert self.batch_set is not None  # run() reports unusable arguments before polling
            return TriggerEvent(BatchEvent.from_progress(self.batch_set, progress).to_payload())
        rates = seen.rate.observe(time.time(), progress)
        # One line per change of progress, not per poll: a triggerer with many waits would
        # otherwise spend its loop writing identical lines.
        if (progress.completed, progress.total) != (seen.completed, seen.total) or not seen.logged:
            self.log.info(
                "Batch %s: %s, %s",
                ",".join(self.batch_ids),
                progress.describe(),
                RateEstimator.format(*rates),
            )
            seen.logged = True
        seen.completed, seen.total = progress.completed, progress.total
        seen.fraction = progress.fraction
        return None

    def _deadline_event(self, seen: _Seen) -> TriggerEvent:
        """The timeout event, after the last poll (made once the deadline had passed)."""
        return self._event(
            BatchEventStatus.TIMEOUT,
            seen.completed,
            seen.total,
            f"deadline passed with {seen.completed}/{seen.total} rows finished",
        )

    def _event(
        self, status: BatchEventStatus, completed: int, total: int, message: str
    ) -> TriggerEvent:
        # The message reaches the resumed task in another process, whose masker never saw the
        # tokens this triggerer obtained: hide them here, and escape the server's text.
        text = printable(redacted(message))
        service = None if self.batch_set is None else self.batch_set.service
        event = BatchEvent(status, self.batch_ids, completed, total, text, None, service)
        return TriggerEvent(event.to_payload())

    async def on_kill(self) -> None:
        """Cancel the batches when a user marks the deferred task failed or clears it (never on
        a restart, nor when the task is still deferred or was marked successful)."""
        if not self.cancel_on_kill or self.batch_set is None:
            return
        state = await task_state(self.task_instance)
        if state in _KEEP_BATCHES:
            self.log.info(
                "Not cancelling %s: the task is %s (%s)",
                self.batch_set.describe(),
                state,
                _KEEP_BATCHES[state],
            )
            return
        hook = await self._ahook()
        try:
            await asyncio.gather(*(self._cancel(hook, batch_id) for batch_id in self.batch_ids))
        finally:
            await hook.aclose()

    async def _cancel(self, hook: Any, batch_id: str) -> None:
        """Cancel one batch, within :data:`CANCEL_SECONDS` (all of them at once: Airflow gives
        ``on_kill`` 30 s, which one slow cancel after another would use up)."""
        self.log.info("Task killed by a user: cancelling batch %s", batch_id)
        try:
            await asyncio.wait_for(
                hook.acancel_batch(self.service_name, self.service_version, batch_id),
                timeout=CANCEL_SECONDS,
            )
        except TimeoutError:
            self.log.warning(
                "Batch %s was not cancelled within %.0f s: it may still be running on the server",
                batch_id,
                CANCEL_SECONDS,
            )
        except MrsDeployError as err:
            self.log.warning("Batch %s could not be cancelled: %s", batch_id, err)
