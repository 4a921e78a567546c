"""The wait after a task starts batches, shared by Submit and Repair: deferred to the
triggerer, or polled from the worker, to one absolute deadline."""

from __future__ import annotations

import time
from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider.batch_set import BatchSet
from airflow_provider.compat import default_deferrable
from airflow_provider.triggers.batch import MrsDeployBatchTrigger
from airflow_provider.waiting.tasks import compute_deadline, deferral_timeout, wait_until_done


class BatchWaitingOperator(BaseOperator):
    """A task that starts batches and waits for them (its subclasses set what is below)."""

    mrsdeploy_conn_id: str
    hook: Any

    def _init_wait(
        self,
        *,
        deferrable: bool | None,
        poll_interval: float,
        max_poll_interval: float | None,
        timeout: float | None,
        cancel_on_timeout: bool,
        cancel_on_kill: bool,
    ) -> None:
        """Keep the wait's parameters (``deferrable`` defaults to Airflow's setting)."""
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = timeout
        self.cancel_on_timeout = cancel_on_timeout
        self.cancel_on_kill = cancel_on_kill

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
        if in_worker:
            wait_until_done(
                self.hook,
                batch_set,
                poll_interval=self.poll_interval,
                deadline=deadline,
                cancel_on_timeout=self.cancel_on_timeout,
            )
