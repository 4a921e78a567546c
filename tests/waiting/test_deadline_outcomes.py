"""What a wait does at its deadline, on the worker and in the triggerer, against the real server.

The rule on both paths: the last status check is made once the deadline has passed (with a
short grace to answer), so a batch that finished in time completes the wait; a timeout then
cancels only the batches still running (on this API a cancel deletes the batch with its
results); the worker's wait rides out a transient error as the trigger does; and Airflow's
``execution_timeout``, its sensor timeout and ``soft_fail`` all follow ``cancel_on_timeout``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests

from airflow_provider.batch_set import BatchSet
from airflow_provider.compat import AirflowSkipException, AirflowTaskTimeout, TaskDeferred
from airflow_provider.exceptions import MrsDeployBatchTimeoutError
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import MrsDeploySubmitBatchOperator
from airflow_provider.sensors import MrsDeployBatchSensor
from airflow_provider.triggers import MrsDeployBatchTrigger
from airflow_provider.waiting.deadlines import FINAL_CHECK_GRACE, checks_end_by, is_last_check
from airflow_provider.waiting.events import BatchEvent, BatchEventStatus
from airflow_provider.waiting.tasks import cancel_unfinished, complete_from_event, wait_until_done

SERVICE = ("mtService", "v1.0.0")
ROW = [{"hp": 110, "wt": 2.62}]


def start(rows: list[dict[str, Any]] = ROW, parallel_count: int = 10) -> BatchSet:
    hook = MrsDeployHook()
    try:
        batch_id = hook.start_batch(
            *SERVICE, json.dumps(rows).encode(), parallel_count=parallel_count
        )
    finally:
        hook.close()
    return BatchSet.of_ids(SERVICE, [batch_id])


def on_server(ref: BatchSet) -> bool:
    hook = MrsDeployHook()
    try:
        return ref.batch_ids[0] in hook.list_batches(*SERVICE)
    finally:
        hook.close()


def wait_in_worker(
    ref: BatchSet, deadline: float | None, conn_id: str = "mrsdeploy_default"
) -> None:
    hook = MrsDeployHook(conn_id)
    try:
        wait_until_done(hook, ref, poll_interval=10, deadline=deadline, cancel_on_timeout=True)
    finally:
        hook.close()


def wait_in_triggerer(
    ref: BatchSet, deadline: float | None, conn_id: str = "mrsdeploy_default"
) -> None:
    """The trigger's wait, then what the task does with its event when it resumes."""
    trigger = MrsDeployBatchTrigger(
        batch_set=ref, deadline=deadline, poll_interval=10, mrsdeploy_conn_id=conn_id
    )

    async def first_event() -> dict[str, Any]:
        events = trigger.run()
        try:
            return dict((await asyncio.wait_for(events.__anext__(), 30)).payload)
        finally:
            await events.aclose()

    payload = asyncio.run(first_event())
    hook = MrsDeployHook(conn_id)
    try:
        complete_from_event(hook, ref, BatchEvent.from_payload(payload), cancel_on_timeout=True)
    finally:
        hook.close()


WAYS: dict[str, Callable[..., None]] = {"worker": wait_in_worker, "triggerer": wait_in_triggerer}


def test_the_check_made_past_the_deadline_is_the_last_and_gets_the_grace() -> None:
    assert checks_end_by(None, 100.0) is None and not is_last_check(None, 1e12)
    assert checks_end_by(200.0, 100.0) == 200.0 and not is_last_check(200.0, 100.0)
    assert checks_end_by(200.0, 200.0) == 200.0 + FINAL_CHECK_GRACE
    assert checks_end_by(200.0, 250.0) == 250.0 + FINAL_CHECK_GRACE and is_last_check(200.0, 250.0)


@pytest.mark.parametrize("way", WAYS)
def test_a_batch_finishing_between_the_last_regular_poll_and_the_deadline_completes_the_wait(
    way: str, mrsdeploy_conn: str, faults: Any
) -> None:
    faults({"rowDelaySeconds": 0.5})
    ref = start()
    # The first check finds the batch running; with a 10 s interval the next one is the check
    # at the deadline, 1.5 s later, when the batch has finished.
    WAYS[way](ref, deadline=time.time() + 1.5)
    assert on_server(ref)


@pytest.mark.parametrize("way", WAYS)
def test_a_wait_started_after_its_deadline_still_checks_once(
    way: str, mrsdeploy_conn: str, faults: Any
) -> None:
    """A triggerer restarted past the deadline, a task resumed late: the batch decides."""
    finished = start()
    wait_in_worker(finished, deadline=None)
    WAYS[way](finished, deadline=time.time() - 5)
    assert on_server(finished)

    faults({"rowDelaySeconds": 5.0})
    running = start(parallel_count=1)
    with pytest.raises(MrsDeployBatchTimeoutError, match="cancelled on the server"):
        WAYS[way](running, deadline=time.time() - 5)
    assert not on_server(running)


def test_a_timeout_acted_on_after_the_batch_finished_keeps_the_batch(mrsdeploy_conn: str) -> None:
    """The trigger saw it running at the deadline; by the time the task resumes it finished."""
    ref = start()
    wait_in_worker(ref, deadline=None)
    late = BatchEvent(BatchEventStatus.TIMEOUT, ref.batch_ids, 0, 1, "deadline passed", ref)
    hook = MrsDeployHook()
    try:
        with pytest.raises(
            MrsDeployBatchTimeoutError, match="finished just after it and were kept"
        ):
            complete_from_event(hook, ref, late, cancel_on_timeout=True)
    finally:
        hook.close()
    assert on_server(ref)


@pytest.mark.parametrize("way", WAYS)
def test_a_transient_error_does_not_end_the_wait(
    way: str,
    reference_server: Any,
    mrsdeploy_conn: str,
    faults: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection = json.loads(os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"])
    connection["extra"] = {"max_retries": 0}  # every 503 reaches the wait
    monkeypatch.setenv("AIRFLOW_CONN_NO_RETRY", json.dumps(connection))
    faults({"rowDelaySeconds": 0.3})
    ref = start()
    faults(
        {
            "rowDelaySeconds": 0.3,
            "httpErrors": [{"status": 503, "count": 1, "retryAfter": 0, "pathRegex": "/batch/"}],
        }
    )
    WAYS[way](ref, deadline=time.time() + 3, conn_id="no_retry")
    left = requests.get(
        f"{reference_server.url}/_faults", headers=reference_server.headers(), timeout=10
    ).json()
    assert left["httpErrors"][0]["count"] == 0  # the 503 was served to the wait
    assert on_server(ref)


def run_as_airflow_does(operator: Any, context: Any) -> Any:
    """Run ``execute`` under its ``execution_timeout`` as Airflow's task runner does: the
    runner's own function where it has one (3.3), else the same steps (3.1 runs them inline):
    a SIGALRM timeout raising ``AirflowTaskTimeout``, then ``on_kill``, then the error again."""
    try:
        from airflow.sdk.execution_time.task_runner import _run_execute_callable
    except ImportError:
        from airflow.sdk.execution_time.timeout import timeout

        try:
            with timeout(operator.execution_timeout.total_seconds()):
                return operator.execute(context=context)
        except AirflowTaskTimeout:
            operator.on_kill()
            raise
    return _run_execute_callable(context, operator.execute, operator)


def _submit_waiting(**kwargs: Any) -> MrsDeploySubmitBatchOperator:
    kwargs.setdefault("poll_interval", 0.3)
    return MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name=SERVICE[0],
        service_version=SERVICE[1],
        records=ROW * 10,
        parallel_count=1,
        wait_for_completion=True,
        deferrable=False,
        **kwargs,
    )


def _sensor_poking(ref: BatchSet, **kwargs: Any) -> MrsDeployBatchSensor:
    return MrsDeployBatchSensor(
        task_id="wait",
        batch_id=ref.to_json(),
        mode="poke",
        deferrable=False,
        poke_interval=0.3,
        **kwargs,
    )


@pytest.mark.parametrize("task", ["submit", "sensor"])
@pytest.mark.parametrize("cancel_on_timeout", [True, False])
def test_execution_timeout_follows_cancel_on_timeout_not_cancel_on_kill(
    task: str, cancel_on_timeout: bool, mrsdeploy_conn: str, faults: Any, task_context: Any
) -> None:
    """Airflow raises its execution timeout in the task, then calls on_kill: the timeout decides."""
    # The timeout leaves a busy machine time to read, send and push the batch first.
    faults({"rowDelaySeconds": 10.0})
    options = {
        "execution_timeout": timedelta(seconds=4),
        "cancel_on_timeout": cancel_on_timeout,
        "cancel_on_kill": not cancel_on_timeout,
    }
    if task == "submit":
        operator: Any = _submit_waiting(**options)
    else:
        operator = _sensor_poking(start(ROW * 10, parallel_count=1), timeout=600, **options)
    with pytest.raises(AirflowTaskTimeout):
        run_as_airflow_does(operator, task_context)
    pushed = task_context["ti"].pushed
    ref = operator._ref if task == "sensor" else BatchSet.from_json(pushed["batch_set"])
    assert on_server(ref) is not cancel_on_timeout


@pytest.mark.parametrize("cancel_on_timeout", [True, False])
def test_a_soft_failed_sensor_timeout_follows_cancel_on_timeout(
    cancel_on_timeout: bool, mrsdeploy_conn: str, faults: Any, task_context: Any
) -> None:
    faults({"rowDelaySeconds": 3.0})
    ref = start(ROW * 10, parallel_count=1)
    sensor = _sensor_poking(ref, timeout=0.5, soft_fail=True, cancel_on_timeout=cancel_on_timeout)
    with pytest.raises(AirflowSkipException, match="timed out"):
        sensor.execute(task_context)
    assert on_server(ref) is not cancel_on_timeout


@pytest.mark.parametrize("value", [-5, math.nan, math.inf, "soon"])
def test_poll_intervals_are_checked_when_the_dag_is_parsed(value: Any) -> None:
    with pytest.raises(ValueError, match="poll_interval must be a finite number"):
        _submit_waiting(poll_interval=value)
    with pytest.raises(ValueError, match="max_poll_interval must be a finite number"):
        _submit_waiting(max_poll_interval=value)
    with pytest.raises(ValueError, match="max_poll_interval must be a finite number"):
        _sensor_poking(BatchSet.of_ids(SERVICE, ["b"]), max_poll_interval=value)


def test_intervals_and_timeouts_may_be_timedeltas(
    mrsdeploy_conn: str, task_context: Any, faults: Any
) -> None:
    """As a sensor's ``poke_interval`` may be: the wait polls at that pace and stops at that
    deadline, and the trigger is handed seconds."""
    faults({"rowDelaySeconds": 10.0})
    submit = _submit_waiting(
        poll_interval=timedelta(milliseconds=300),
        max_poll_interval=timedelta(seconds=2),
        timeout=timedelta(seconds=1.5),
    )
    assert (submit.poll_interval, submit.max_poll_interval) == (0.3, 2.0)
    began = time.monotonic()
    with pytest.raises(MrsDeployBatchTimeoutError, match="cancelled on the server"):
        submit.execute(task_context)
    assert time.monotonic() - began < 1.5 + FINAL_CHECK_GRACE + 5
    assert not on_server(BatchSet.from_json(task_context["ti"].pushed["batch_set"]))

    deferring = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name=SERVICE[0],
        service_version=SERVICE[1],
        records=ROW,
        poll_interval=timedelta(seconds=5),
        max_poll_interval=timedelta(minutes=1),
        deferrable=True,
    )
    sensor = _sensor_poking(BatchSet.of_ids(SERVICE, ["b"]), max_poll_interval=timedelta(1))
    assert (deferring.poll_interval, deferring.max_poll_interval) == (5.0, 60.0)
    assert sensor.max_poll_interval == 86400.0
    with pytest.raises(TaskDeferred) as deferred:
        deferring.execute(task_context)
    kwargs = deferred.value.trigger.serialize()[1]
    assert json.loads(json.dumps(kwargs)) == kwargs  # seconds, never a timedelta
    assert (kwargs["poll_interval"], kwargs["max_poll_interval"]) == (5.0, 60.0)
    hook = MrsDeployHook()
    try:
        cancel_unfinished(hook, BatchSet.from_json(task_context["ti"].pushed["batch_set"]))
    finally:
        hook.close()


@pytest.mark.parametrize(
    "value", [timedelta(0), timedelta(seconds=-1), timedelta.max, 2e9], ids=str
)
def test_an_interval_must_be_above_zero_and_not_overflow_the_wait(value: object) -> None:
    """``timedelta.max`` overflowed ``time.sleep`` once the batches had started."""
    with pytest.raises(ValueError, match="poll_interval must be a finite number"):
        _submit_waiting(poll_interval=value)
    with pytest.raises(ValueError, match="max_poll_interval must be a finite number"):
        _sensor_poking(BatchSet.of_ids(SERVICE, ["b"]), max_poll_interval=value)


@pytest.mark.parametrize("value", [timedelta.max, 2e9, timedelta(seconds=-1)], ids=str)
def test_a_timeout_must_not_overflow_the_deferral(value: object) -> None:
    """``timedelta.max`` overflowed Airflow's deferral timeout once the batches had started."""
    with pytest.raises(ValueError, match="timeout must be None, a timedelta or a finite"):
        _submit_waiting(timeout=value)
