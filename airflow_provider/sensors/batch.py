"""Wait for batch executions, poking from a worker or deferred to the triggerer."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from airflow_provider.api import MrsDeployError
from airflow_provider.batch_set import BatchSet, to_batch_set
from airflow_provider.compat import (
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
    default_deferrable,
)
from airflow_provider.operators.parameters import flag
from airflow_provider.triggers.batch import MrsDeployBatchTrigger
from airflow_provider.waiting.deadlines import as_seconds, check_interval, checks_end_by
from airflow_provider.waiting.events import BatchEvent
from airflow_provider.waiting.progress import BatchOutcome
from airflow_provider.waiting.tasks import (
    MrsDeployBatchTimeoutError,
    cancel_batches,
    cancel_through_a_copy,
    cancel_unfinished,
    check_tolerantly,
    complete_from_event,
    compute_deadline,
    deferral_timed_out,
    deferral_timeout,
    raise_if_failed,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider.hooks import MrsDeployHook


class MrsDeployBatchSensor(BaseSensorOperator):
    """Wait until batch executions on R Server / ML Server are complete.

    Poke and reschedule modes check from a worker; with ``deferrable=True`` the sensor checks
    once and, if the batch is still running, hands the wait to :class:`MrsDeployBatchTrigger`
    with an absolute deadline built from ``timeout`` and ``execution_timeout``. A batch the
    server reports ``Failed`` fails the task; on the deadline the batch is cancelled unless
    ``cancel_on_timeout=False``.

    :param batch_id: The batch set to act on, usually ``submit.output`` (it names its service);
        or a batch execution id, or a list of ids, with ``service_name`` and
        ``service_version``.
    :param service_name: Service name, needed with plain ids (checked against a batch set).
    :param service_version: Service version, needed with plain ids (checked against a set).
    :param mrsdeploy_conn_id: Connection to the web node.
    :param deferrable: Wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param max_poll_interval: Slowest poll while deferred and far from done, in seconds or as a
        ``timedelta`` (defaults to ``poke_interval``).
    :param cancel_on_timeout: Cancel the batch when the deadline passes.
    :param cancel_on_kill: Cancel the batch when a user kills the running or deferred task.
    """

    template_fields: Sequence[str] = (
        "batch_id",
        "service_name",
        "service_version",
        "mrsdeploy_conn_id",
    )
    ui_color = "#d6e9f8"

    def __init__(
        self,
        *,
        batch_id: Any,
        service_name: str | None = None,
        service_version: str | None = None,
        mrsdeploy_conn_id: str = "mrsdeploy_default",
        deferrable: bool | None = None,
        max_poll_interval: float | timedelta | None = None,
        cancel_on_timeout: bool = True,
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_id = batch_id
        self.service_name = service_name
        self.service_version = service_version
        self.mrsdeploy_conn_id = mrsdeploy_conn_id
        # "false" (a template in a field that is not one) would count as true.
        self.deferrable = (
            default_deferrable() if deferrable is None else flag("deferrable", deferrable)
        )
        # Airflow takes 0; the trigger, which polls at this interval when deferred, does not
        # (it would poll as fast as the server answers): refused here, not when deferring.
        check_interval(self.poke_interval_seconds(), "poke_interval")
        self.max_poll_interval = (
            None
            if max_poll_interval is None
            else check_interval(max_poll_interval, "max_poll_interval")
        )
        self.cancel_on_timeout = flag("cancel_on_timeout", cancel_on_timeout)
        self.cancel_on_kill = flag("cancel_on_kill", cancel_on_kill)
        self._ref: BatchSet | None = None
        #: When poking: the end of the sensor's timeout, which no check may run past.
        self._poke_deadline: float | None = None
        #: A timeout ended the wait and was acted on (``on_kill`` must not cancel again).
        self._timeout_handled = False

    @cached_property
    def hook(self) -> MrsDeployHook:
        """The hook, created on first use (never while the DAG file is parsed)."""
        from airflow_provider.hooks import MrsDeployHook

        return MrsDeployHook(self.mrsdeploy_conn_id)

    def batch_ref(self, context: Context) -> BatchSet:
        """Which service and batches this task waits for (the rendered ``batch_id``)."""
        if self._ref is None:
            self._ref = to_batch_set(self.batch_id, self.service_name, self.service_version)
        return self._ref

    def poke(self, context: Context) -> bool:
        """One status check: True when complete, raises when the server reports a failure.

        Like the trigger, a transient error that outlived the hook's retries is logged and the
        next poke tries again; only the sensor's timeout ends the wait.
        """
        ref = self.batch_ref(context)
        end = checks_end_by(self._poke_deadline, time.time())
        progress = check_tolerantly(self.hook, ref, end=end, logger=self.log)
        if progress is None:
            return False
        raise_if_failed(ref, progress)
        self.log.info("%s: %s", ref.describe(), progress.describe())
        return progress.outcome is BatchOutcome.COMPLETE

    def execute(self, context: Context) -> Any:
        """Poke once; when still running and deferrable, defer to the trigger."""
        if not self.deferrable:
            return self._execute_poking(context)
        if self.poke(context):
            return None
        ref = self.batch_ref(context)
        timeout = self.timeout if isinstance(self.timeout, (int, float, timedelta)) else None
        now = time.time()
        deadline = compute_deadline(now, timeout, self.execution_timeout)
        self.defer(
            trigger=MrsDeployBatchTrigger(
                batch_set=ref,
                mrsdeploy_conn_id=self.mrsdeploy_conn_id,
                poll_interval=float(self.poke_interval_seconds()),
                max_poll_interval=self.max_poll_interval,
                deadline=deadline,
                cancel_on_kill=self.cancel_on_kill,
            ),
            method_name="execute_complete",
            # Airflow's backstop, should the trigger be unable to report the deadline itself.
            timeout=deferral_timeout(deadline, now),
        )
        return None

    def _execute_poking(self, context: Context) -> Any:
        """Poke or reschedule mode; on the sensor timeout, cancel the batches by default."""
        if self.mode == "poke" and isinstance(self.timeout, (int, float, timedelta)):
            self._poke_deadline = compute_deadline(time.time(), self.timeout)
        try:
            return super().execute(context)
        except (AirflowSensorTimeout, AirflowTaskTimeout, AirflowSkipException) as err:
            if not self._timed_out(err):
                raise
            # Airflow calls on_kill after its execution timeout: the timeout decides here.
            self._timeout_handled = True
            if self.cancel_on_timeout and self._ref is not None:
                self.log.error("Timed out waiting: cancelling %s", self._ref.describe())
                cancel_through_a_copy(self.hook, self._ref, partial(cancel_unfinished, quiet=True))
            raise

    def _timed_out(self, err: BaseException) -> bool:
        """Whether the sensor's loop ended ``err`` because a timeout passed: the sensor's own
        (skipped instead with ``soft_fail``) or the task's ``execution_timeout``.

        Airflow's loop raises its timeout skip without a cause; a skip caused by an error of
        the poke (``never_fail``) is not a timeout.
        """
        if not isinstance(err, AirflowSkipException):
            return True
        cause = err.__cause__
        return cause is None or isinstance(cause, (AirflowSensorTimeout, AirflowTaskTimeout))

    def poke_interval_seconds(self) -> float:
        """``poke_interval`` in seconds whatever type it was given as."""
        return as_seconds(self.poke_interval)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        """Resume after deferral: validate the event and act on its status.

        A deadline fails the task with ``AirflowSensorTimeout``, as in poke mode: Airflow does
        not retry it (a retry would only poll the batch that was just cancelled).
        """
        try:
            complete_from_event(
                self.hook,
                self.batch_ref(context),
                BatchEvent.from_payload(event),
                cancel_on_timeout=self.cancel_on_timeout,
            )
        except MrsDeployBatchTimeoutError as err:
            raise AirflowSensorTimeout(str(err)) from None

    def resume_execution(
        self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context
    ) -> Any:
        """Resume after deferral; when Airflow's backstop ended the deferral (the trigger never
        reported), cancel the batches as the deadline asks before failing.

        With ``soft_fail`` or ``never_fail``, a provider error after the deferral (a failed
        batch, a server error) skips the task as Airflow's sensor does for its own exceptions:
        provider errors are plain exceptions, which Airflow's resume would let fail the task.
        """
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except Exception as err:
            if deferral_timed_out(err) and self.cancel_on_timeout:
                self.log.error("The wait passed its deadline: cancelling the batches")
                # The timeout is the error the user must see.
                cancel_unfinished(self.hook, self.batch_ref(context), quiet=True)
            if isinstance(err, MrsDeployError):
                for flag in ("soft_fail", "never_fail"):
                    if getattr(self, flag, False):
                        raise AirflowSkipException(
                            f"Skipping due to {flag} is set to True."
                        ) from err
            raise

    def on_kill(self) -> None:
        """Cancel the batches when the task is killed while poking.

        Airflow calls this from a signal handler that may interrupt a call of the hook, so it
        works through an independent copy of the hook.
        """
        if self._timeout_handled:
            return  # the timeout, handled as cancel_on_timeout says, is why the task ends
        if self.cancel_on_kill and self._ref is not None:
            cancel_through_a_copy(self.hook, self._ref, cancel_batches)
