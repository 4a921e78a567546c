"""The wait after a task starts batches, shared by Submit and Repair: deferred to the
triggerer, or polled from the worker, to one absolute deadline."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import partial
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider.batch_set import BatchSet
from airflow_provider.compat import AirflowTaskTimeout, default_deferrable
from airflow_provider.operators.parameters import flag
from airflow_provider.triggers.batch import MrsDeployBatchTrigger
from airflow_provider.waiting.deadlines import check_interval, check_timeout
from airflow_provider.waiting.tasks import (
    cancel_through_a_copy,
    cancel_unfinished,
    compute_deadline,
    deferral_timeout,
    wait_until_done,
)


class BatchWaitingOperator(BaseOperator):
    """A task that starts batches and waits for them (its subclasses set what is below)."""

    mrsdeploy_conn_id: str
    hook: Any

    def _init_wait(
        self,
        *,
        deferrable: bool | None,
        poll_interval: float | timedelta,
        max_poll_interval: float | timedelta | None,
        timeout: float | timedelta | None,
        cancel_on_timeout: bool,
        cancel_on_kill: bool,
    ) -> None:
        """Keep the wait's parameters (``deferrable`` defaults to Airflow's setting)."""
        # "false" (a template in a field that is not one) would count as true.
        self.deferrable = (
            default_deferrable() if deferrable is None else flag("deferrable", deferrable)
        )
        # Checked while the DAG is parsed: after the batches started, a bad interval would fail
        # the wait (and every retry) with the batches left running.
        self.poll_interval = check_interval(poll_interval, "poll_interval")
        self.max_poll_interval = (
            None
            if max_poll_interval is None
            else check_interval(max_poll_interval, "max_poll_interval")
        )
        self.timeout = check_timeout(timeout)
        self.cancel_on_timeout = flag("cancel_on_timeout", cancel_on_timeout)
        self.cancel_on_kill = flag("cancel_on_kill", cancel_on_kill)
        #: A timeout ended the wait and was acted on (``on_kill`` must not cancel again).
        self._timeout_handled = False

    def _wait_for(
        self,
        batch_set: BatchSet,
        *,
        in_worker: bool = True,
        resume_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Defer until ``batch_set`` is done (resuming in ``execute_complete``), or poll it from
        the worker when not deferrable and ``in_worker``; raise on failure or timeout.

        :param resume_kwargs: passed to ``execute_complete`` with the trigger's event.
        """
        now = time.time()
        deadline = compute_deadline(now, self.timeout, self.execution_timeout)
        if self.deferrable:
            self.defer(
                trigger=MrsDeployBatchTrigger(
                    batch_set=batch_set,
                    mrsdeploy_conn_id=self.mrsdeploy_conn_id,
                    poll_interval=self.poll_interval,
                    max_poll_interval=self.max_poll_interval,
                    deadline=deadline,
                    cancel_on_kill=self.cancel_on_kill,
                ),
                method_name="execute_complete",
                kwargs=resume_kwargs,
                # Airflow's backstop, should the trigger be unable to report the deadline.
                timeout=deferral_timeout(deadline, now),
            )
        if not in_worker:
            return
        try:
            wait_until_done(
                self.hook,
                batch_set,
                poll_interval=self.poll_interval,
                deadline=deadline,
                cancel_on_timeout=self.cancel_on_timeout,
            )
        except AirflowTaskTimeout:
            self._on_execution_timeout(batch_set)
            raise

    def _on_execution_timeout(self, batch_set: BatchSet) -> None:
        """The task's ``execution_timeout`` ended the wait: Airflow calls ``on_kill`` next, but
        the timeout decides, as ``cancel_on_timeout`` says (the batches still running are
        cancelled; finished ones are kept)."""
        self._timeout_handled = True
        if not self.cancel_on_timeout:
            self.log.error("Timed out waiting: %s left running", batch_set.describe())
            return
        self.log.error("Timed out waiting: cancelling %s", batch_set.describe())
        cancel_through_a_copy(self.hook, batch_set, partial(cancel_unfinished, quiet=True))
