"""The provider on a distributed deployment: PostgreSQL, Celery workers, two triggerers.

Durable submission, deferral, deadlines, re-attachment and collect must hold when the tasks of
one run land on different workers that share no disk, the waits spread over several
triggerers, and any of these processes dies. Each scenario ends with the reference server's
batch list (no batch started twice) and the outputs read back from shared storage (every row
written exactly once, with the right score).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cryptography.fernet import Fernet

from airflow_provider.batch_set import BatchSet, to_batch_set
from airflow_provider.server.demo_services import mtcars_coefficients
from tests.distributed import report
from tests.distributed.cluster import TRIGGERERS, WORKERS, DistributedCluster
from tests.distributed.deployment import Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.distributed, pytest.mark.timeout(900)]

CHUNKS_DAG = "mrsdeploy_score_in_chunks"
WAITS_DAG = "mrsdeploy_distributed_waits"
RETRY_DAG = "mrsdeploy_distributed_retry"
TRIGGER_CLASSPATH = "airflow_provider.triggers.batch.MrsDeployBatchTrigger"
RUN_TIMEOUT = 600.0
STATE_TIMEOUT = 300.0
TAKEOVER_TIMEOUT = 120.0


# -- data ---------------------------------------------------------------------------------------


def cars(rows: int, seed: int) -> pd.DataFrame:
    """``rows`` cars with a distinct ``hp`` each (so every output row names its input row)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "car": [f"car-{i:05d}" for i in range(rows)],  # not a service input: dropped
            "hp": np.round(50 + 0.25 * np.arange(rows) + rng.uniform(0, 0.2, rows), 4),
            "wt": np.round(rng.uniform(1.5, 5.5, rows), 4),
        }
    )


def expected_answers(inputs: pd.DataFrame) -> np.ndarray:
    """What ``mtService`` answers for each row: the logistic regression ``am ~ hp + wt``."""
    b0, b1, b2 = mtcars_coefficients()
    linear = b0 + b1 * inputs["hp"].to_numpy() + b2 * inputs["wt"].to_numpy()
    return np.asarray(1.0 / (1.0 + np.exp(-linear)))


# -- checks -------------------------------------------------------------------------------------


def new_batches(deployment: Deployment, before: Iterable[str]) -> list[str]:
    """Batches on the reference server that were not there before."""
    seen = set(before)
    return [batch_id for batch_id in deployment.batches() if batch_id not in seen]


def assert_success(cluster: DistributedCluster, dag_id: str, run_id: str) -> None:
    """Wait for the run to end; it must succeed."""
    state = cluster.wait_for_run(dag_id, run_id, RUN_TIMEOUT)
    assert state == "success", f"{dag_id}/{run_id} ended {state}\n" + cluster.diagnostics(
        dag_id, run_id
    )


def submitted_sets(
    cluster: DistributedCluster, dag_id: str, run_id: str, count: int
) -> list[BatchSet]:
    """The batch set each mapped Submit returned, by map index."""
    return [
        to_batch_set(cluster.api.xcom_at(dag_id, run_id, "submit", index)) for index in range(count)
    ]


@dataclass(frozen=True)
class Fired:
    """An event a triggerer fired for a task's trigger."""

    try_number: int
    triggerer_job: int
    result: str


def fired_events(
    cluster: DistributedCluster, dag_id: str, run_id: str, task_id: str
) -> dict[int, list[Fired]]:
    """Per map index, the events the triggerers fired for the task, in try order."""
    fired: dict[int, list[Fired]] = {}
    for (map_index, attempt, job), records in cluster.trigger_records(
        dag_id, run_id, task_id
    ).items():
        for record in records:
            if record.get("event") == "Trigger fired event":
                fired.setdefault(map_index, []).append(Fired(attempt, job, str(record["result"])))
    return {index: sorted(events, key=lambda e: e.try_number) for index, events in fired.items()}


def assert_each_fired_complete_once(
    fired: dict[int, list[Fired]], batch_sets: list[BatchSet]
) -> None:
    """Each deferral's trigger fired exactly one event: its own batch's completion."""
    assert sorted(fired) == list(range(len(batch_sets))), sorted(fired)
    for index, batch_set in enumerate(batch_sets):
        tries = [event.try_number for event in fired[index]]
        assert len(tries) == len(set(tries)), (index, fired[index])
        for event in fired[index]:
            assert "'status': 'complete'" in event.result, event
            assert batch_set.batch_ids[0] in event.result, (batch_set.batch_ids, event)


def assert_all(tis: list[dict[str, Any]], state: str, try_number: int | None = 1) -> None:
    """Every task instance ended in ``state`` (on its first try, by default)."""
    outcome = {(ti["map_index"], ti["state"], ti["try_number"]) for ti in tis}
    wrong = [o for o in outcome if o[1] != state or (try_number and o[2] != try_number)]
    assert not wrong, f"expected every instance {state} on try {try_number}: {sorted(wrong)}"


@dataclass
class Landed:
    """What a collect wrote under one folder, read back from shared storage."""

    table: pd.DataFrame
    manifest: dict[str, Any]


def read_landed(deployment: Deployment, prefix: str) -> Landed:
    """The outputs table and manifest under ``prefix``; every file the manifest lists must be
    there with its size, and nothing half-written may be left."""
    manifest = deployment.read_json(f"{prefix}manifest.json")
    table = deployment.read_parquet(f"{prefix}outputs.parquet")
    sizes = deployment.sizes(prefix)
    for entry in manifest["files"]:
        assert sizes.get(f"{prefix}{entry['path']}") == entry["size"], entry
    assert not [key for key in sizes if key.endswith(".tmp")], sorted(sizes)
    assert manifest["counts"]["rows"] == len(table)
    assert list(table["index"]) == list(range(len(table)))
    return Landed(table, manifest)


def assert_rows_once(
    tables: list[pd.DataFrame], inputs: pd.DataFrame, row_of: list[np.ndarray]
) -> int:
    """Together the tables hold every input row exactly once, scored right; return the count.

    :param row_of: for each table, the input row of each of its rows.
    """
    rows = np.concatenate(row_of) if row_of else np.array([], dtype=int)
    assert len(rows) == len(inputs), f"{len(rows)} rows written for {len(inputs)} input rows"
    assert np.array_equal(np.sort(rows), np.arange(len(inputs))), "a row is missing or repeated"
    combined = pd.concat(tables, ignore_index=True)
    assert combined["success"].all()
    expected = expected_answers(inputs.iloc[rows].reset_index(drop=True))
    assert np.allclose(combined["answer"].to_numpy(), expected, rtol=1e-9, atol=0.0)
    return len(combined)


def rows_by_input_hp(table: pd.DataFrame, inputs: pd.DataFrame) -> np.ndarray:
    """The input row of each output row, found by its ``input_hp`` (distinct per input row)."""
    position = pd.Series(np.arange(len(inputs)), index=inputs["hp"].to_numpy())
    assert position.index.is_unique
    rows = position.reindex(table["input_hp"].to_numpy())
    assert not rows.isna().any(), "an output row names an input that was never submitted"
    assert np.allclose(table["input_wt"].to_numpy(), inputs["wt"].to_numpy()[rows.to_numpy()])
    return np.asarray(rows.to_numpy(dtype=int))


@contextmanager
def restarted(cluster: DistributedCluster, victim: Callable[[], str]) -> Iterator[None]:
    """Start the component a scenario killed again at its end, passed or failed, so the next
    scenario has the whole deployment."""
    try:
        yield
    finally:
        name = victim()
        if name and not cluster.processes[name].running:
            cluster.start_component(name)


# -- triggers in the metadata database -----------------------------------------------------------


@dataclass(frozen=True)
class TriggerRow:
    """A deferred task's trigger as the metadata database holds it."""

    trigger_id: int
    triggerer_id: int | None
    deadline: float | None
    trigger_timeout: Any


def _find(value: Any, key: str) -> Any:
    """The first value stored under ``key`` anywhere in a JSON document."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
        values: Iterable[Any] = value.values()
    elif isinstance(value, list):
        values = value
    else:
        return None
    for item in values:
        found = _find(item, key)
        if found is not None:
            return found
    return None


def trigger_rows(
    deployment: Deployment, dag_id: str, run_id: str, task_id: str
) -> dict[int, TriggerRow]:
    """Per map index, the trigger of a deferred task, its triggerer and its deadline (read from
    the trigger's kwargs, decrypted with the deployment's Fernet key)."""
    fernet = Fernet(deployment.cluster.env["AIRFLOW__CORE__FERNET_KEY"].encode())
    rows = deployment.postgres.query(
        "SELECT ti.map_index, t.id, t.triggerer_id, t.kwargs, ti.trigger_timeout "
        'FROM task_instance ti JOIN "trigger" t ON t.id = ti.trigger_id '
        "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = %s",
        (dag_id, run_id, task_id),
    )
    found: dict[int, TriggerRow] = {}
    for map_index, trigger_id, triggerer_id, kwargs, trigger_timeout in rows:
        text = str(kwargs)
        document = json.loads(text if text.startswith("{") else fernet.decrypt(text.encode()))
        deadline = _find(document, "deadline")
        found[int(str(map_index))] = TriggerRow(
            int(str(trigger_id)),
            None if triggerer_id is None else int(str(triggerer_id)),
            None if deadline is None else float(deadline),
            trigger_timeout,
        )
    return found


# -- scenarios ----------------------------------------------------------------------------------


def test_dags_parse_on_the_distributed_deployment(deployment: Deployment) -> None:
    """The DAG processor (on PostgreSQL) stores every DAG of the suite without import error."""
    cluster = deployment.cluster
    cluster.wait_for_every_file()
    assert cluster.api.import_errors() == []
    dag_ids = {dag["dag_id"] for dag in cluster.api.dags()}
    assert {CHUNKS_DAG, WAITS_DAG, RETRY_DAG} <= dag_ids
    hosts = {job["hostname"] for job in cluster.api.jobs("TriggererJob")}
    assert hosts == set(TRIGGERERS)


def test_chunked_dag_scores_every_row_once_across_both_workers(deployment: Deployment) -> None:
    """The shipped chunked-DAG example, 1,200 rows in 24 chunks on shared storage: each chunk
    submitted by a deferrable Submit that waited in a triggerer, tasks spread over both
    workers, one batch per chunk on the server, every row landed exactly once."""
    cluster = deployment.cluster
    rows, chunk_rows = 1200, 50
    chunks = math.ceil(rows / chunk_rows)
    run_id = "distributed_chunks"
    with report.scenario("chunked DAG, 24 mapped chunks across 2 workers") as measured:
        inputs = cars(rows, seed=1)
        records = deployment.put_csv("chunks/input.csv", inputs)
        cluster.wait_for_dag(CHUNKS_DAG)
        before = deployment.batches()
        conf = {
            "records": records,
            "destination": deployment.url("chunks/out"),
            "chunk_rows": chunk_rows,
        }
        cluster.api.trigger(CHUNKS_DAG, run_id, "2026-06-01T00:00:00+00:00", conf)
        assert_success(cluster, CHUNKS_DAG, run_id)

        submits = cluster.api.mapped(CHUNKS_DAG, run_id, "submit")
        collects = cluster.api.mapped(CHUNKS_DAG, run_id, "collect")
        assert len(submits) == len(collects) == chunks >= 20
        assert_all(collects, "success")
        # A Submit resumed from deferral may need a second try when Airflow's scheduler takes
        # the deferring process's late exit for the resumed try (see docs/e2e.md); the retry
        # re-attaches, which the batch count below checks.
        assert_all(submits, "success", try_number=None)
        retried = sum(1 for ti in submits if ti["try_number"] > 1)
        hosts = {ti["hostname"] for ti in submits + collects}
        assert hosts == set(WORKERS), f"tasks ran on {hosts}, expected both workers"

        batch_sets = submitted_sets(cluster, CHUNKS_DAG, run_id, chunks)
        created = new_batches(deployment, before)
        planned = sum(int(batch_set.planned_batches or 0) for batch_set in batch_sets)
        measured.batches_on_server, measured.batches_planned = len(created), planned
        assert sorted(created) == sorted(b for s in batch_sets for b in s.batch_ids)
        assert len(created) == planned == chunks

        # Every Submit deferred: its trigger ran in a triggerer and fired once, complete.
        fired = fired_events(cluster, CHUNKS_DAG, run_id, "submit")
        assert_each_fired_complete_once(fired, batch_sets)
        triggerers = {event.triggerer_job for events in fired.values() for event in events}

        tables, row_of = [], []
        for index, batch_set in enumerate(batch_sets):
            landed = read_landed(deployment, f"chunks/out/chunks/2026-06-01/chunk={index:04d}/")
            assert landed.manifest["batch_ids"] == list(batch_set.batch_ids)
            assert landed.manifest["counts"]["files"] == 2 * len(landed.table)
            tables.append(landed.table)
            row_of.append(index * chunk_rows + landed.table["index"].to_numpy())
        measured.rows_expected = rows
        measured.rows_written = assert_rows_once(tables, inputs, row_of)
        measured.notes.append(
            f"tasks on {len(hosts)} workers, Submit triggers fired by {len(triggerers)} "
            f"triggerers, Submit retries {retried}"
        )


def test_triggerer_killed_its_deferred_sensors_move_to_the_other(deployment: Deployment) -> None:
    """24 sensors deferred over both triggerers; one triggerer is SIGKILLed. Once its heartbeat
    is stale the other takes its triggers over (the same trigger rows, same deadlines); every
    sensor succeeds on its first try, and no batch is started twice."""
    cluster = deployment.cluster
    rows, chunk_rows = 480, 20
    chunks = rows // chunk_rows
    run_id = "distributed_triggerer_failover"
    victim = ""
    with (
        report.scenario("triggerer SIGKILL with 24 deferred sensors") as measured,
        restarted(cluster, lambda: victim),
    ):
        inputs = cars(rows, seed=2)
        records = deployment.put_csv("failover/input.csv", inputs)
        cluster.wait_for_dag(WAITS_DAG)
        before = deployment.batches()
        conf = {
            "records": records,
            "destination": deployment.url("failover/out"),
            "chunk_rows": chunk_rows,
            "parallel_count": 1,
        }
        # One row at a time, 12 s each: every batch runs for 4 minutes unless released.
        with deployment.server.faults(service="mtService", rowDelaySeconds=12):
            cluster.api.trigger(WAITS_DAG, run_id, "2026-06-02T00:00:00+00:00", conf)

            def all_deferred() -> list[dict[str, Any]] | None:
                waits = cluster.api.mapped(WAITS_DAG, run_id, "wait")
                ready = [
                    ti
                    for ti in waits
                    if ti["state"] == "deferred" and (ti.get("trigger") or {}).get("triggerer_id")
                ]
                return waits if len(waits) == chunks and len(ready) == chunks else None

            waits = cluster.wait_until("every sensor to be deferred", all_deferred, STATE_TIMEOUT)
            assert {ti["trigger"]["classpath"] for ti in waits} == {TRIGGER_CLASSPATH}
            jobs = {name: cluster.triggerer_job(name) for name in TRIGGERERS}
            held = {
                name: sum(1 for ti in waits if ti["trigger"]["triggerer_id"] == job)
                for name, job in jobs.items()
            }
            victim = max(held, key=lambda name: held[name])
            survivor = next(name for name in TRIGGERERS if name != victim)
            survivor_job = jobs[survivor]
            assert held[victim] >= 1 and sum(held.values()) == chunks >= 20, held
            measured.notes.append(
                "triggers before the kill: "
                + ", ".join(f"{name} {count}" for name, count in sorted(held.items()))
            )
            before_kill = trigger_rows(deployment, WAITS_DAG, run_id, "wait")
            assert len(before_kill) == chunks
            for row in before_kill.values():  # the sensor's timeout=1800, from its deferral
                assert row.deadline is not None and 0 < row.deadline - time.time() <= 1800

            killed_at = time.monotonic()
            cluster.kill(victim)

            def taken_over() -> bool:
                waits = cluster.api.mapped(WAITS_DAG, run_id, "wait")
                return all(
                    ti["state"] == "deferred" and ti["trigger"]["triggerer_id"] == survivor_job
                    for ti in waits
                )

            cluster.wait_until(f"{survivor} to take every trigger", taken_over, TAKEOVER_TIMEOUT)
            measured.notes.append(
                f"{survivor} held all {chunks} triggers "
                f"{time.monotonic() - killed_at:.1f} s after the kill"
            )
            after_kill = trigger_rows(deployment, WAITS_DAG, run_id, "wait")
            for index, row in before_kill.items():
                moved = after_kill[index]
                assert moved.trigger_id == row.trigger_id, "the wait was deferred again"
                assert moved.deadline == row.deadline, "the deadline changed"
                assert moved.trigger_timeout == row.trigger_timeout
                assert moved.triggerer_id == survivor_job
            cluster.check_components()

        assert_success(cluster, WAITS_DAG, run_id)
        assert_all(cluster.api.mapped(WAITS_DAG, run_id, "wait"), "success")
        assert_all(cluster.api.mapped(WAITS_DAG, run_id, "submit"), "success")
        batch_sets = submitted_sets(cluster, WAITS_DAG, run_id, chunks)
        created = new_batches(deployment, before)
        planned = sum(int(batch_set.planned_batches or 0) for batch_set in batch_sets)
        measured.batches_on_server, measured.batches_planned = len(created), planned
        assert sorted(created) == sorted(b for s in batch_sets for b in s.batch_ids)
        assert len(created) == planned == chunks

        # Only the survivor fired, once per wait; the killed triggerer fired nothing.
        fired = fired_events(cluster, WAITS_DAG, run_id, "wait")
        assert_each_fired_complete_once(fired, batch_sets)
        assert {
            (event.try_number, event.triggerer_job) for events in fired.values() for event in events
        } == {(1, survivor_job)}

        tables, row_of = [], []
        for index, batch_set in enumerate(batch_sets):
            landed = read_landed(deployment, f"failover/out/chunk={index:04d}/")
            assert landed.manifest["batch_ids"] == list(batch_set.batch_ids)
            tables.append(landed.table)
            row_of.append(rows_by_input_hp(landed.table, inputs))
        measured.rows_expected = rows
        measured.rows_written = assert_rows_once(tables, inputs, row_of)


def test_worker_lost_mid_submit_retry_reattaches_on_the_other(deployment: Deployment) -> None:
    """The worker running Submit (waiting on its batch) is SIGKILLed with its task: Airflow
    notices the missing heartbeat and retries on the other worker, which re-attaches to the
    batch recorded in the task state store (metadata database); one batch on the server."""
    cluster = deployment.cluster
    run_id = "distributed_worker_lost"
    victim = ""
    with (
        report.scenario("Celery worker SIGKILL mid-submit") as measured,
        restarted(cluster, lambda: victim),
    ):
        inputs = cars(40, seed=3)
        records = deployment.put_csv("retry/input.csv", inputs)
        cluster.wait_for_dag(RETRY_DAG)
        before = deployment.batches()
        conf = {"records": records, "destination": deployment.url("retry/out")}
        with deployment.server.faults(service="mtService", rowDelaySeconds=5):
            cluster.api.trigger(RETRY_DAG, run_id, "2026-06-03T00:00:00+00:00", conf)
            ti = cluster.wait_for_task_state(RETRY_DAG, run_id, "submit", "running", STATE_TIMEOUT)
            started = cluster.wait_until(
                "the batch to appear on the server",
                lambda: new_batches(deployment, before),
                STATE_TIMEOUT,
            )
            assert len(started) == 1, started
            cluster.wait_until(
                "the submission to be recorded in the task state store",
                lambda: (
                    started[0] in json.dumps(cluster.api.state_store(RETRY_DAG, run_id, "submit"))
                ),
                STATE_TIMEOUT,
            )
            running = cluster.api.task_instance(RETRY_DAG, run_id, "submit")
            assert (running["state"], running["try_number"]) == ("running", 1)
            victim = str(running["hostname"])
            assert victim in WORKERS, running
            assert cluster.task_runner(ti["id"]) is not None, "no task process found"
            killed_at = time.monotonic()
            cluster.kill(victim)
            retry = cluster.wait_until(
                "the lost try to be retried",
                lambda: (
                    (t := cluster.api.task_instance(RETRY_DAG, run_id, "submit"))["try_number"] == 2
                    and t["state"] == "running"
                    and t
                ),
                STATE_TIMEOUT,
            )
            measured.notes.append(
                f"retry running on {retry['hostname']} {time.monotonic() - killed_at:.1f} s "
                "after the kill"
            )

        assert_success(cluster, RETRY_DAG, run_id)
        tries = {
            t["try_number"]: (t["state"], t["hostname"])
            for t in cluster.api.tries(RETRY_DAG, run_id, "submit")
        }
        other = next(name for name in WORKERS if name != victim)
        assert tries == {1: ("failed", victim), 2: ("success", other)}, tries
        created = new_batches(deployment, before)
        returned = to_batch_set(cluster.api.xcom(RETRY_DAG, run_id, "submit"))
        measured.batches_on_server = len(created)
        measured.batches_planned = int(returned.planned_batches or 0)
        assert created == started == list(returned.batch_ids), "the retry started another batch"
        retry_logs = [
            p for p in cluster.task_logs(RETRY_DAG, run_id, "submit") if p.name == "attempt=2.log"
        ]
        assert len(retry_logs) == 1 and cluster.host_home(other) in retry_logs[0].parents
        assert "Re-attaching to" in retry_logs[0].read_text(errors="replace")

        landed = read_landed(deployment, "retry/out/")
        assert landed.manifest["batch_ids"] == started
        measured.rows_expected = len(inputs)
        measured.rows_written = assert_rows_once(
            [landed.table], inputs, [rows_by_input_hp(landed.table, inputs)]
        )


def test_scheduler_killed_mid_run_runs_complete(deployment: Deployment) -> None:
    """Two runs in flight (tasks queued on the broker, running on workers, deferred in the
    triggerers) when the scheduler is SIGKILLed and started again: both runs complete, no
    batch is started twice, every row lands once."""
    cluster = deployment.cluster
    rows, chunk_rows = 64, 8
    chunks = rows // chunk_rows
    runs = {f"distributed_scheduler_restart_{n}": cars(rows, seed=10 + n) for n in (1, 2)}
    with report.scenario("scheduler SIGKILL and restart, 2 runs in flight") as measured:
        cluster.wait_for_dag(WAITS_DAG)
        before = deployment.batches()
        # One row at a time, 5 s each: 40 s per batch unless released after the restart.
        with deployment.server.faults(service="mtService", rowDelaySeconds=5):
            for day, (run_id, inputs) in enumerate(runs.items(), start=4):
                conf = {
                    "records": deployment.put_csv(f"{run_id}/input.csv", inputs),
                    "destination": deployment.url(f"{run_id}/out"),
                    "chunk_rows": chunk_rows,
                    "parallel_count": 1,
                }
                cluster.api.trigger(WAITS_DAG, run_id, f"2026-06-{day:02d}T00:00:00+00:00", conf)

            def waiting() -> dict[str, int] | None:
                """The runs' task states once a sensor is deferred (or already done)."""
                states: dict[str, int] = {}
                sensed = False
                for run_id in runs:
                    for ti in cluster.api.run_task_instances(WAITS_DAG, run_id):
                        state = str(ti["state"] or "none")
                        states[state] = states.get(state, 0) + 1
                        sensed = sensed or (ti["task_id"] == "wait" and state == "success")
                return states if states.get("deferred") or sensed else None

            states = cluster.wait_until("a sensor to be deferred", waiting, STATE_TIMEOUT)
            measured.notes.append(f"at the kill: {dict(sorted(states.items()))}")
            cluster.kill("scheduler")
            time.sleep(5)  # tasks finish and triggers fire while no scheduler runs
            cluster.start_component("scheduler")
        for run_id in runs:
            assert_success(cluster, WAITS_DAG, run_id)

        planned, returned, retried = 0, [], 0
        for run_id, inputs in runs.items():
            batch_sets = submitted_sets(cluster, WAITS_DAG, run_id, chunks)
            planned += sum(int(batch_set.planned_batches or 0) for batch_set in batch_sets)
            returned += [b for s in batch_sets for b in s.batch_ids]
            retried += sum(
                1
                for ti in cluster.api.run_task_instances(WAITS_DAG, run_id)
                if ti["try_number"] > 1
            )
            run_tables, run_rows = [], []
            for index in range(chunks):
                landed = read_landed(deployment, f"{run_id}/out/chunk={index:04d}/")
                run_tables.append(landed.table)
                run_rows.append(rows_by_input_hp(landed.table, inputs))
            written = assert_rows_once(run_tables, inputs, run_rows)
            measured.rows_written += written
            measured.rows_expected += len(inputs)
        created = new_batches(deployment, before)
        measured.batches_on_server, measured.batches_planned = len(created), planned
        assert sorted(created) == sorted(returned), "a batch was started twice"
        assert len(created) == planned == len(runs) * chunks
        log = cluster.processes["scheduler"].log_text()
        measured.notes.append(
            f"task instances that needed another try: {retried}; "
            f"orphaned task resets logged: {log.count('Reset the following')}"
        )
