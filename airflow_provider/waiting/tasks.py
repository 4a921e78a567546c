"""Waiting on batches from a worker: status checks, deadlines and the outcome of a wait.

The sensor's poke, ``wait_for_completion`` and ``execute_complete`` after deferral all end here,
so a batch is judged the same way whichever path a task took.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from airflow_provider.api import MrsDeployError
from airflow_provider.batch_set import BatchSet
from airflow_provider.compat import TaskDeferralTimeout
from airflow_provider.exceptions import MrsDeployBatchFailedError, MrsDeployBatchTimeoutError
from airflow_provider.safe_text import printable, redacted
from airflow_provider.waiting.deadlines import (
    FINAL_CHECK_GRACE,
    as_seconds,
    calls_end_by,
    checks_end_by,
    is_last_check,
)
from airflow_provider.waiting.events import BatchEvent, BatchEventStatus
from airflow_provider.waiting.progress import (
    BatchOutcome,
    BatchProgress,
    RateEstimator,
    evaluate_batches,
    is_transient_poll_error,
)

log = logging.getLogger(__name__)

#: Airflow's own deferral timeout ends the wait this long after the trigger's deadline, as a
#: backstop for a trigger that could not report (a triggerer that died, for instance).
DEFERRAL_BACKSTOP_GRACE = 60.0


def compute_deadline(
    now: float, timeout: float | timedelta | None, execution_timeout: timedelta | None = None
) -> float | None:
    """Absolute wall-clock deadline from a sensor timeout and/or the task's execution timeout.

    Time spent deferred does not count against ``execution_timeout`` in Airflow, so it is turned
    into a deadline here; the earlier of the two wins.
    """
    limits = []
    for limit in (timeout, execution_timeout):
        if limit is None:
            continue
        limits.append(now + as_seconds(limit))
    return min(limits) if limits else None


def deferral_timeout(deadline: float | None, now: float) -> timedelta | None:
    """The ``timeout`` given to ``defer()``: the deadline plus :data:`DEFERRAL_BACKSTOP_GRACE`.

    :param deadline: the wait's absolute deadline (epoch seconds), or None.
    :param now: current epoch seconds.
    """
    if deadline is None:
        return None
    return timedelta(seconds=max(deadline - now, 0.0) + DEFERRAL_BACKSTOP_GRACE)


def deferral_timed_out(error: BaseException) -> bool:
    """Whether ``error`` comes from Airflow's deferral timeout (directly or converted by a
    sensor into ``AirflowSensorTimeout`` or a skip)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, TaskDeferralTimeout):
            return True
        seen = seen.__cause__
    return False


def check_batches(hook: Any, ref: BatchSet) -> BatchProgress:
    """One sync status check of every batch in ``ref``."""
    statuses = [
        hook.get_batch_progress(ref.service_name, ref.service_version, batch_id)
        for batch_id in ref.batch_ids
    ]
    return evaluate_batches(ref.batch_ids, statuses)


def check_tolerantly(
    hook: Any, ref: BatchSet, *, end: float | None, logger: Any = log
) -> BatchProgress | None:
    """:func:`check_batches`, its calls ending by ``end``; None when it failed in a way a later
    check may not (the hook has retried already: a proxy restarting, a server under load).

    The worker's waits and the trigger treat a failed check the same way: logged, and the
    wait goes on until its deadline.

    :raises MrsDeployError: what will not heal (a batch the server does not know, a refused
        token, an answer that breaks the contract).
    """
    try:
        with calls_end_by(end):
            return check_batches(hook, ref)
    except (MrsDeployError, OSError) as exc:
        if not is_transient_poll_error(exc):
            raise
        logger.warning("Checking %s failed, will check again: %s", ref.describe(), exc)
        return None


def raise_if_failed(ref: BatchSet, progress: BatchProgress) -> None:
    """Fail the task with the server's verdict when any batch failed."""
    if progress.outcome is BatchOutcome.FAILED:
        raise MrsDeployBatchFailedError(
            f"{ref.describe()}: the server reports batch execution(s) "
            f"{', '.join(progress.failed_batch_ids)} as Failed after {progress.describe()}. "
            "Check the service and the server log; rows are not collected from a failed batch."
        )


def cancel_batches(hook: Any, ref: BatchSet) -> None:
    """Cancel every batch in ``ref``; a batch already gone is not an error."""
    for batch_id in ref.batch_ids:
        log.info("Cancelling batch %s of %s %s", batch_id, ref.service_name, ref.service_version)
        hook.cancel_batch(ref.service_name, ref.service_version, batch_id)


def cancel_unfinished(hook: Any, ref: BatchSet, *, quiet: bool = False) -> list[str]:
    """Cancel the batches of ``ref`` that are still running, as a timeout asks; return the ids
    of those found finished, which are kept.

    On this API cancelling deletes a batch with its results: a batch that finished between the
    wait's last check and now (the task resuming after deferral, Airflow's backstop, a poke
    cut short) is worth keeping, for a retry or a Collect. A batch whose state cannot be read
    is cancelled, as the timeout asked.

    :param quiet: log problems instead of raising them (while another error is the one the
        user must see).
    """
    kept = []
    for batch_id in ref.batch_ids:
        try:
            with calls_end_by(time.time() + FINAL_CHECK_GRACE):
                status = hook.get_batch_progress(ref.service_name, ref.service_version, batch_id)
            if status.is_terminal:
                log.warning(
                    "Batch %s finished (%s) after the deadline: kept, not cancelled",
                    batch_id,
                    status.state.value,
                )
                kept.append(batch_id)
                continue
        except Exception as exc:  # unknown state: cancel, as the timeout asks
            log.warning("Could not check batch %s before cancelling it: %s", batch_id, exc)
        try:
            log.info(
                "Cancelling batch %s of %s %s", batch_id, ref.service_name, ref.service_version
            )
            hook.cancel_batch(ref.service_name, ref.service_version, batch_id)
        except Exception as exc:
            if not quiet:
                raise
            log.warning("Could not cancel batch %s: %s", batch_id, exc)
    return kept


def cancel_through_a_copy(
    hook: Any, ref: BatchSet, cancel: Callable[[Any, BatchSet], object]
) -> None:
    """``cancel(copy, ref)`` through an independent copy of ``hook``, closed after.

    Airflow's execution timeout and its kill signal arrive in the task's thread and may
    interrupt a call of the hook itself: the cancel must not reuse that half-used connection.

    :param cancel: :func:`cancel_batches`, or :func:`cancel_unfinished` after a timeout.
    """
    copy = hook.independent_copy()
    try:
        cancel(copy, ref)
    finally:
        copy.close()


def wait_until_done(
    hook: Any,
    ref: BatchSet,
    *,
    poll_interval: float,
    deadline: float | None,
    cancel_on_timeout: bool,
    sleep: Any = time.sleep,
) -> BatchProgress:
    """Poll from the worker until complete; raise on failure, or when the check made once the
    deadline has passed (the last, see :func:`checks_end_by`) does not find it complete."""
    rate = RateEstimator()
    progress_text = "its progress unknown: the last checks failed"
    while True:
        started = time.time()
        progress = check_tolerantly(hook, ref, end=checks_end_by(deadline, started))
        if progress is not None:
            raise_if_failed(ref, progress)
            if progress.outcome is BatchOutcome.COMPLETE:
                log.info("%s complete: %s", ref.describe(), progress.describe())
                return progress
            progress_text = progress.describe()
            log.info(
                "%s: %s, %s",
                ref.describe(),
                progress_text,
                RateEstimator.format(*rate.observe(time.time(), progress)),
            )
        if is_last_check(deadline, started):
            handle_timeout(hook, ref, progress_text, cancel_on_timeout)
        wait = poll_interval if deadline is None else min(poll_interval, deadline - time.time())
        sleep(max(wait, 0.0))


def handle_timeout(hook: Any, ref: BatchSet, progress_text: str, cancel_on_timeout: bool) -> None:
    """Cancel the batches still running (by default) and fail with a message that says what
    happened to them."""
    if cancel_on_timeout:
        kept = cancel_unfinished(hook, ref)
        if kept:
            outcome = (
                f"batch(es) {', '.join(kept)} finished just after it and were kept; the others "
                "were cancelled on the server. A retry of the task, or a Collect, can use them"
            )
        else:
            outcome = "the batch was cancelled on the server"
    else:
        outcome = "the batch was left running on the server (cancel_on_timeout=False)"
    raise MrsDeployBatchTimeoutError(
        f"{ref.describe()} did not finish before the deadline ({progress_text}); {outcome}. "
        "Raise the waiting task's timeout (the sensor's, or the operator's timeout) or its "
        "execution_timeout if the batch needs longer."
    )


def complete_from_event(
    hook: Any, ref: BatchSet, event: BatchEvent, *, cancel_on_timeout: bool
) -> BatchEvent:
    """Decide what a validated trigger event means for the task; return it when complete.

    The event's message was written in the triggerer: it is masked again here with the secrets
    this process knows (the connection's are registered first), and escaped.
    """
    with contextlib.suppress(MrsDeployError):
        hook.settings  # noqa: B018 - registers the connection's password with the masker
    message = printable(redacted(event.message))
    if event.status is BatchEventStatus.COMPLETE:
        log.info("%s: %s", ref.describe(), message)
        return event
    if event.status is BatchEventStatus.FAILED:
        raise MrsDeployBatchFailedError(f"{ref.describe()}: {message}")
    if event.status is BatchEventStatus.TIMEOUT:
        handle_timeout(
            hook, ref, f"{event.completed}/{event.total} rows finished", cancel_on_timeout
        )
    raise MrsDeployError(f"{ref.describe()}: waiting failed: {message}")
