"""Killed and timed-out tasks leave nothing running on the reference server.

Airflow calls ``on_kill`` from its SIGTERM handler, in the thread that runs ``execute``, between
two steps of it, and then lets ``execute`` go on. The tests reproduce that timing by wrapping
one call the task makes (of its own hook, its task instance, its submission), which still does
its real work, so that ``on_kill`` runs at a chosen point: before any batch, after a batch was
started, while a start is under way, once all were started, while waiting. What is left on the
server is read with a separate hook.

Deferral timeouts are driven the way Airflow resumes a task whose trigger never reported: a
fresh operator's ``resume_execution("__fail__", {"error": TriggerFailureReason.TRIGGER_TIMEOUT})``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

from airflow_provider.api import MrsDeployBatchState, MrsDeployError, MrsDeployNotFoundError
from airflow_provider.batch_set import BatchSet
from airflow_provider.compat import (
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferralError,
    TaskDeferralTimeout,
    TaskDeferred,
)
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import MrsDeploySubmitBatchOperator
from airflow_provider.operators.submission import MrsDeploySubmissionKilledError, StartedBatches
from airflow_provider.sensors import MrsDeployBatchSensor
from airflow_provider.triggers import MrsDeployBatchTrigger
from airflow_provider.waiting.tasks import DEFERRAL_BACKSTOP_GRACE
from tests.faults.helpers import CARS, MT

#: Rows slow enough that a batch of a few rows (one at a time) is still running when checked.
SLOW_ROWS = {"rowDelaySeconds": 2.0, "service": MT[0]}

#: The ``faults`` fixture: sets the reference server's fault hooks for one test.
Faults = Callable[[dict[str, Any]], None]

#: Where a kill lands relative to the real start of a batch.
BEFORE, AFTER = "before", "after"


@pytest.fixture
def server() -> Iterator[MrsDeployHook]:
    """A hook of the test's own, to see what is on the server independently of the task."""
    hook = MrsDeployHook()
    yield hook
    hook.close()


def batches(server: MrsDeployHook) -> set[str]:
    return set(server.list_batches(*MT))


def is_gone(server: MrsDeployHook, batch_id: str) -> bool:
    """Whether the server has deleted the batch (cancelling deletes it: later calls get 404)."""
    try:
        server.get_batch_status(*MT, batch_id)
    except MrsDeployNotFoundError:
        return True
    return False


def state(server: MrsDeployHook, batch_id: str) -> MrsDeployBatchState:
    return server.get_batch_status(*MT, batch_id).state


def start_slow_batch(server: MrsDeployHook, rows: int = 3) -> str:
    """A batch that runs its rows one at a time (with :data:`SLOW_ROWS` set, for seconds)."""
    body = json.dumps(CARS[:rows]).encode()
    return server.start_batch(*MT, body, parallel_count=1)


def submit_operator(**kwargs: Any) -> MrsDeploySubmitBatchOperator:
    kwargs.setdefault("records", CARS[:3])
    kwargs.setdefault("deferrable", False)
    return MrsDeploySubmitBatchOperator(
        task_id="submit", service_name=MT[0], service_version=MT[1], **kwargs
    )


def sensor_operator(batch_id: str, **kwargs: Any) -> MrsDeployBatchSensor:
    return MrsDeployBatchSensor(
        task_id="wait", batch_id=batch_id, service_name=MT[0], service_version=MT[1], **kwargs
    )


class KillDuringStarts:
    """Wrap the operator's ``hook.start_batch`` so that ``on_kill`` runs at the ``call``-th start,
    ``before`` the real start (the start is under way when the signal comes: the batch is created
    after the kill) or ``after`` it (the batch exists, the submission has not seen its id yet).

    :attr:`created` lists every batch the task really created; :attr:`left_at_kill` what the
    server still had of them once ``on_kill`` returned.
    """

    def __init__(
        self, op: MrsDeploySubmitBatchOperator, server: MrsDeployHook, call: int, moment: str
    ) -> None:
        self.op = op
        self.server = server
        self.call = call
        self.moment = moment
        self.calls = 0
        self.created: list[str] = []
        self.created_before_kill: list[str] = []
        self.left_at_kill: set[str] = set()
        self._real: Callable[..., str] = op.hook.start_batch

    def install(self, monkeypatch: pytest.MonkeyPatch) -> KillDuringStarts:
        monkeypatch.setattr(self.op.hook, "start_batch", self.start_batch)
        return self

    def _kill(self) -> None:
        # The batches whose start had returned to the submission before this call.
        self.created_before_kill = self.created[: self.call - 1]
        self.op.on_kill()
        self.left_at_kill = batches(self.server) & set(self.created)

    def start_batch(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.calls == self.call and self.moment == BEFORE:
            self._kill()
        batch_id = self._real(*args, **kwargs)
        self.created.append(batch_id)
        if self.calls == self.call and self.moment == AFTER:
            self._kill()
        return batch_id


# -- killed while submitting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "moment", "created", "message"),
    [
        pytest.param(1, AFTER, 1, "after starting 1 of 3", id="after-first-start"),
        pytest.param(2, BEFORE, 2, "after starting 2 of 3", id="while-second-start-under-way"),
        pytest.param(3, BEFORE, 3, "while submitting", id="while-last-start-under-way"),
        pytest.param(3, AFTER, 3, "while submitting", id="after-last-start"),
    ],
)
def test_kill_while_submitting_starts_nothing_more_and_cancels_every_batch(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
    monkeypatch: pytest.MonkeyPatch,
    call: int,
    moment: str,
    created: int,
    message: str,
) -> None:
    faults(SLOW_ROWS)
    before = batches(server)
    op = submit_operator(max_records_per_batch=1, parallel_count=1)
    kill = KillDuringStarts(op, server, call, moment).install(monkeypatch)
    started = time.monotonic()
    try:
        with pytest.raises(MrsDeploySubmissionKilledError, match=message):
            op.execute(task_context)
    finally:
        op.hook.close()
    assert time.monotonic() - started < 30  # the kill ended the task; nothing waited on rows
    # No batch was started once the kill had been seen ...
    assert kill.calls == created and len(kill.created) == created
    # ... the batches already known to the submission were cancelled by on_kill itself ...
    assert not kill.left_at_kill & set(kill.created_before_kill)
    # ... and every batch the task created is gone from the server, none left running.
    assert batches(server) - before == set()
    assert all(is_gone(server, batch_id) for batch_id in kill.created)
    assert task_context["ti"].pushed == {}  # nothing was handed downstream


def test_kill_during_the_only_start_cancels_that_batch(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    faults(SLOW_ROWS)
    before = batches(server)
    op = submit_operator(parallel_count=1)
    kill = KillDuringStarts(op, server, 1, BEFORE).install(monkeypatch)
    try:
        with pytest.raises(MrsDeploySubmissionKilledError):
            op.execute(task_context)
    finally:
        op.hook.close()
    assert len(kill.created) == 1
    assert is_gone(server, kill.created[0])
    assert batches(server) - before == set()


def test_a_second_kill_is_harmless(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Airflow may deliver SIGTERM twice; the second ``on_kill`` must not fail the unwinding."""
    faults(SLOW_ROWS)
    before = batches(server)
    op = submit_operator(max_records_per_batch=1, parallel_count=1)
    kill = KillDuringStarts(op, server, 2, BEFORE).install(monkeypatch)
    real_kill = op.on_kill

    def kill_twice() -> None:
        real_kill()
        real_kill()

    monkeypatch.setattr(op, "on_kill", kill_twice)
    try:
        with pytest.raises(MrsDeploySubmissionKilledError, match="after starting 2 of 3"):
            op.execute(task_context)
    finally:
        op.hook.close()
    assert len(kill.created) == 2
    assert batches(server) - before == set()


def test_kill_before_the_first_start_starts_nothing(
    mrsdeploy_conn: str,
    task_context: Any,
    server: MrsDeployHook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kill while the records are still being checked (the service definition is read first)
    must stop the task from starting any batch afterwards."""
    before = batches(server)
    op = submit_operator(max_records_per_batch=1, parallel_count=1)
    real_get_service = op.hook.get_service

    def get_service(*args: Any, **kwargs: Any) -> Any:
        op.on_kill()
        return real_get_service(*args, **kwargs)

    monkeypatch.setattr(op.hook, "get_service", get_service)
    try:
        with pytest.raises(MrsDeploySubmissionKilledError):
            op.execute(task_context)
    finally:
        op.hook.close()
        for batch_id in batches(server) - before:  # whatever a failure of this test started
            server.cancel_batch(*MT, batch_id)
    assert batches(server) - before == set()


def test_kill_once_every_start_returned_does_not_hand_over_cancelled_batches(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kill lands after the last start returned and the submission was checked, but before
    the task took the batches as its own (it adopts the finished batch set's ids then):
    ``on_kill`` still stops the submission and cancels every batch, so the task must not go on
    to push and return the batch set as if its batches were running."""
    faults(SLOW_ROWS)
    before = batches(server)
    op = submit_operator(max_records_per_batch=1, parallel_count=1)
    real_adopt = StartedBatches.adopt
    killed: list[set[str]] = []
    adopted: list[str] = []

    def adopt(started: StartedBatches, batch_ids: Any) -> None:
        if not killed:
            assert op._ref is None  # the task has not taken the batches as its own yet
            adopted.extend(batch_ids)
            op.on_kill()
            killed.append(batches(server) & set(batch_ids))
        real_adopt(started, batch_ids)

    monkeypatch.setattr(StartedBatches, "adopt", adopt)
    try:
        with pytest.raises(MrsDeploySubmissionKilledError):
            op.execute(task_context)
    finally:
        op.hook.close()
    assert len(adopted) == 3  # every start had returned
    assert killed == [set()]  # on_kill cancelled all three batches
    assert batches(server) - before == set()
    assert task_context["ti"].pushed == {}


# -- killed after submitting -----------------------------------------------------------------------


@pytest.mark.parametrize("cancel_on_kill", [True, False])
def test_kill_once_submitted_cancels_unless_told_not_to(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
    monkeypatch: pytest.MonkeyPatch,
    cancel_on_kill: bool,
) -> None:
    """Every batch was started; the kill comes while the ids are pushed to XCom. The task
    stops there (it neither waits nor reports success); the batches, handed over already, are
    cancelled unless ``cancel_on_kill=False``."""
    faults(SLOW_ROWS)
    before = batches(server)
    op = submit_operator(max_records_per_batch=2, parallel_count=1, cancel_on_kill=cancel_on_kill)
    ti = task_context["ti"]
    real_push = ti.xcom_push
    at_kill: dict[str, set[str]] = {}

    def push(key: str, value: Any) -> None:
        if not at_kill:
            at_kill["left"] = batches(server) - before
            op.on_kill()
            at_kill["after"] = batches(server) - before
        real_push(key, value)

    monkeypatch.setattr(ti, "xcom_push", push)
    outcome = "cancelled" if cancel_on_kill else r"left running \(cancel_on_kill=False\)"
    try:
        with pytest.raises(MrsDeploySubmissionKilledError, match=outcome):
            op.execute(task_context)
    finally:
        op.hook.close()
    ids = sorted(at_kill["left"])
    assert len(ids) == 2  # both batches existed when the kill came
    if cancel_on_kill:
        assert at_kill["after"] == set()
        assert all(is_gone(server, batch_id) for batch_id in ids)
    else:
        assert at_kill["after"] == set(ids)
        assert all(state(server, b) is not MrsDeployBatchState.FAILED for b in ids)
        for batch_id in ids:
            server.cancel_batch(*MT, batch_id)


def test_kill_while_waiting_cancels_the_batch(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    faults(SLOW_ROWS)
    before = batches(server)
    op = submit_operator(wait_for_completion=True, poll_interval=0.2, parallel_count=1)
    real_progress = op.hook.get_batch_progress
    killed: list[str] = []

    def progress(name: str, version: str, batch_id: str) -> Any:
        if not killed:  # the first status check of the wait: the batch is running
            assert state(server, batch_id) is not MrsDeployBatchState.COMPLETE
            op.on_kill()
            killed.append(batch_id)
        return real_progress(name, version, batch_id)

    monkeypatch.setattr(op.hook, "get_batch_progress", progress)
    started = time.monotonic()
    try:
        with pytest.raises(MrsDeployError):
            op.execute(task_context)
    finally:
        op.hook.close()
    assert time.monotonic() - started < 30  # the wait did not go on for the cancelled batch
    assert len(killed) == 1 and is_gone(server, killed[0])
    assert batches(server) - before == set()


def test_kill_while_waiting_leaves_the_batch_with_cancel_on_kill_false(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    faults({**SLOW_ROWS, "rowDelaySeconds": 0.5})
    op = submit_operator(
        wait_for_completion=True, poll_interval=0.2, parallel_count=1, cancel_on_kill=False
    )
    real_progress = op.hook.get_batch_progress
    at_kill: list[MrsDeployBatchState] = []

    def progress(name: str, version: str, batch_id: str) -> Any:
        if not at_kill:
            op.on_kill()
            at_kill.append(state(server, batch_id))
        return real_progress(name, version, batch_id)

    monkeypatch.setattr(op.hook, "get_batch_progress", progress)
    try:
        returned = op.execute(task_context)  # the wait goes on to the end
    finally:
        op.hook.close()
    batch_set = BatchSet.from_json(returned)
    assert [(p.first_row, p.row_count) for p in batch_set.parts] == [(0, 3)]
    (batch_id,) = batch_set.batch_ids
    assert at_kill[0] in (
        MrsDeployBatchState.PENDING,
        MrsDeployBatchState.READY,
        MrsDeployBatchState.IN_PROGRESS,
    )
    status = server.get_batch_status(*MT, batch_id)
    assert status.state is MrsDeployBatchState.COMPLETE and status.completed_item_count == 3


# -- deadlines of a deferred wait ------------------------------------------------------------------


def deferred(op: Any, context: Any) -> tuple[TaskDeferred, float, float]:
    """Run ``execute`` until it defers; the deferral and the wall-clock time around the call."""
    before = time.time()
    with pytest.raises(TaskDeferred) as raised:
        op.execute(context)
    return raised.value, before, time.time()


def check_backstop(deferral: TaskDeferred, limit: float, before: float, after: float) -> None:
    """The trigger's deadline is ``limit`` from the call; Airflow's timeout ends the deferral
    :data:`DEFERRAL_BACKSTOP_GRACE` seconds after that deadline."""
    trigger = deferral.trigger
    assert isinstance(trigger, MrsDeployBatchTrigger)
    deadline = trigger.deadline
    assert deadline is not None and before + limit <= deadline <= after + limit
    assert isinstance(deferral.timeout, timedelta)
    seconds = deferral.timeout.total_seconds()
    # timeout = deadline - now + grace, with "now" taken during the call
    assert deadline - after + DEFERRAL_BACKSTOP_GRACE <= seconds
    assert seconds <= deadline - before + DEFERRAL_BACKSTOP_GRACE


@pytest.mark.parametrize(
    ("sensor_kwargs", "limit"),
    [
        pytest.param({"timeout": 30}, 30.0, id="timeout"),
        pytest.param(
            {"timeout": 600, "execution_timeout": timedelta(seconds=20)},
            20.0,
            id="execution-timeout-first",
        ),
    ],
)
def test_deferrable_sensor_defers_with_deadline_and_backstop(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
    sensor_kwargs: dict[str, Any],
    limit: float,
) -> None:
    faults(SLOW_ROWS)
    batch_id = start_slow_batch(server)
    try:
        op = sensor_operator(batch_id, deferrable=True, poke_interval=1, **sensor_kwargs)
        deferral, before, after = deferred(op, task_context)
        check_backstop(deferral, limit, before, after)
        assert deferral.method_name == "execute_complete"
    finally:
        server.cancel_batch(*MT, batch_id)


@pytest.mark.parametrize("cancel_on_timeout", [True, False])
def test_sensor_timeout_event_raises_sensor_timeout(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
    cancel_on_timeout: bool,
) -> None:
    faults(SLOW_ROWS)
    batch_id = start_slow_batch(server)
    op = sensor_operator(batch_id, deferrable=True, cancel_on_timeout=cancel_on_timeout)
    event = {"status": "timeout", "batch_ids": [batch_id], "completed": 0, "total": 3}
    try:
        with pytest.raises(AirflowSensorTimeout) as raised:
            op.execute_complete(task_context, event)
        assert is_gone(server, batch_id) is cancel_on_timeout
        if cancel_on_timeout:
            assert "cancelled on the server" in str(raised.value)
        else:
            assert "left running" in str(raised.value)
            assert state(server, batch_id) is not MrsDeployBatchState.COMPLETE
    finally:
        server.cancel_batch(*MT, batch_id)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(TriggerFailureReason.TRIGGER_TIMEOUT, id="enum"),
        # What the scheduler stored, read back from the database as plain JSON.
        pytest.param(TriggerFailureReason.TRIGGER_TIMEOUT.value, id="json"),
    ],
)
def test_sensor_deferral_timeout_cancels_the_batch(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
    error: Any,
) -> None:
    faults(SLOW_ROWS)
    batch_id = start_slow_batch(server)
    op = sensor_operator(batch_id, deferrable=True, timeout=30)
    deferred(op, task_context)
    resumed = sensor_operator(batch_id, deferrable=True, timeout=30)  # a new process resumes
    try:
        with pytest.raises(AirflowSensorTimeout):
            resumed.resume_execution(TRIGGER_FAIL_REPR, {"error": error}, task_context)
    finally:
        resumed.hook.close()
    assert is_gone(server, batch_id)


def test_sensor_deferral_timeout_leaves_the_batch_when_told(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
) -> None:
    faults(SLOW_ROWS)
    batch_id = start_slow_batch(server)
    resumed = sensor_operator(batch_id, deferrable=True, timeout=30, cancel_on_timeout=False)
    failure = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    try:
        with pytest.raises(AirflowSensorTimeout):
            resumed.resume_execution(TRIGGER_FAIL_REPR, failure, task_context)
        assert state(server, batch_id) is not MrsDeployBatchState.COMPLETE
    finally:
        resumed.hook.close()
        server.cancel_batch(*MT, batch_id)


def test_soft_fail_sensor_deferral_timeout_skips_and_still_cancels(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
) -> None:
    faults(SLOW_ROWS)
    batch_id = start_slow_batch(server)
    resumed = sensor_operator(batch_id, deferrable=True, timeout=30, soft_fail=True)
    failure = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    try:
        with pytest.raises(AirflowSkipException):
            resumed.resume_execution(TRIGGER_FAIL_REPR, failure, task_context)
    finally:
        resumed.hook.close()
    assert is_gone(server, batch_id)


def test_a_trigger_failure_that_is_no_timeout_cancels_nothing(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
) -> None:
    faults(SLOW_ROWS)
    batch_id = start_slow_batch(server)
    resumed = sensor_operator(batch_id, deferrable=True, timeout=30)
    failure = {"error": TriggerFailureReason.TRIGGER_FAILURE}
    try:
        with pytest.raises(TaskDeferralError):
            resumed.resume_execution(TRIGGER_FAIL_REPR, failure, task_context)
        assert not is_gone(server, batch_id)
    finally:
        resumed.hook.close()
        server.cancel_batch(*MT, batch_id)


@pytest.mark.parametrize("cancel_on_timeout", [True, False])
def test_submit_deferral_timeout_cancels_the_batches_it_pushed(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Faults,
    server: MrsDeployHook,
    cancel_on_timeout: bool,
) -> None:
    faults(SLOW_ROWS)
    kwargs: dict[str, Any] = {
        "deferrable": True,
        "timeout": 45,
        "poll_interval": 1,
        "parallel_count": 1,
        "max_records_per_batch": 2,
        "cancel_on_timeout": cancel_on_timeout,
    }
    op = submit_operator(**kwargs)
    try:
        deferral, before, after = deferred(op, task_context)
    finally:
        op.hook.close()
    check_backstop(deferral, 45.0, before, after)
    task_context["ti"].publish("submit")
    ids = BatchSet.from_json(task_context["ti"].store[("submit", "batch_set")]).batch_ids
    assert len(ids) == 2 and not any(is_gone(server, b) for b in ids)
    resumed = submit_operator(**kwargs)  # a new process resumes the deferred task
    failure = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    try:
        with pytest.raises(TaskDeferralTimeout):
            resumed.resume_execution(TRIGGER_FAIL_REPR, failure, task_context)
        assert [is_gone(server, b) for b in ids] == [cancel_on_timeout] * 2
    finally:
        resumed.hook.close()
        for batch_id in ids:
            server.cancel_batch(*MT, batch_id)


def test_submit_without_any_limit_defers_without_a_backstop(
    mrsdeploy_conn: str, task_context: Any, server: MrsDeployHook
) -> None:
    op = submit_operator(deferrable=True, poll_interval=1)
    try:
        deferral, _, _ = deferred(op, task_context)
    finally:
        op.hook.close()
    assert isinstance(deferral.trigger, MrsDeployBatchTrigger)
    assert deferral.trigger.deadline is None and deferral.timeout is None
    for batch_id in BatchSet.from_json(task_context["ti"].pushed["batch_set"]).batch_ids:
        server.cancel_batch(*MT, batch_id)


class MappedTaskInstance:
    """The XCom of a mapped task as Airflow 3 answers it: one value per map index, and, asked
    without a map index, every instance's value in a list."""

    def __init__(self, map_index: int, pushed: dict[int, Any]) -> None:
        self.map_index = map_index
        self.pushed = pushed

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.setdefault(self.map_index, {})[key] = value

    def xcom_pull(self, task_ids: str, key: str, map_indexes: Any = NotImplemented) -> Any:
        values = {index: value[key] for index, value in self.pushed.items()}
        if map_indexes is NotImplemented:  # not given
            return [values[index] for index in sorted(values)]
        return values.get(-1 if map_indexes is None else map_indexes)


def test_a_mapped_submit_resumes_with_and_cancels_its_own_batches_only(
    mrsdeploy_conn: str, faults: Faults, server: MrsDeployHook
) -> None:
    """Two mapped Submits deferred; the second resumes. It must read back the set it pushed,
    not the list of both instances' sets, and its deferral timeout cancels its batches only."""
    faults(SLOW_ROWS)
    kwargs: dict[str, Any] = {"deferrable": True, "timeout": 45, "poll_interval": 1}
    pushed: dict[int, Any] = {}
    for index in (0, 1):
        op = submit_operator(**kwargs)
        try:
            deferred(op, {"ti": MappedTaskInstance(index, pushed)})
        finally:
            op.hook.close()
    mine, theirs = (BatchSet.from_json(pushed[i]["batch_set"]) for i in (1, 0))
    context: Any = {"ti": MappedTaskInstance(1, pushed)}
    resumed = submit_operator(**kwargs)
    event = {"status": "complete", "batch_ids": list(mine.batch_ids), "completed": 3, "total": 3}
    failure = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    try:
        assert BatchSet.from_json(resumed.execute_complete(context, event)) == mine
        with pytest.raises(TaskDeferralTimeout):
            resumed.resume_execution(TRIGGER_FAIL_REPR, failure, context)
        assert is_gone(server, mine.batch_ids[0])
        assert not is_gone(server, theirs.batch_ids[0])
    finally:
        resumed.hook.close()
        for batch_id in (*mine.batch_ids, *theirs.batch_ids):
            server.cancel_batch(*MT, batch_id)
