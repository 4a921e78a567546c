"""The provider under real Airflow processes: scheduler, triggerer, DAG processor, API server.

``dag.test()`` runs triggers inline in the test process; here the sensor's trigger must be
imported, deserialized and run by a separate ``airflow triggerer`` process, the tasks run in
LocalExecutor workers that talk to the API server, and components are restarted or killed
while work is in flight. The reference server counts the batches, so a duplicate submission
cannot go unnoticed.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.batch_set import BatchSet, to_batch_set
from airflow_provider.sample_data import mtcars_csv_path
from tests.e2e.cluster import AirflowCluster
from tests.support.server import ReferenceServer

pytestmark = pytest.mark.e2e

SCORE_DAG = "mrsdeploy_score_mtcars"
RETRY_DAG = "mrsdeploy_e2e_submit_retry"
BATCH_SET_DAG = "mrsdeploy_e2e_batch_set"
REPORT_DAG = "mrsdeploy_scores_report"
TRIGGER_CLASSPATH = "airflow_provider.triggers.batch.MrsDeployBatchTrigger"
MTCARS_ROWS = 32
# Rows start in waves of parallel_count=10, each wave sleeping this long first: the batch runs
# for about four waves, long enough for the sensor's first poke to find it unfinished. The delay
# is lifted once the awaited state is reached, so the rest of the batch runs at full speed.
ROW_DELAY = 5.0
RUN_TIMEOUT = 180.0
STATE_TIMEOUT = 120.0

BatchLister = Callable[[], list[str]]


def _new_batches(list_batches: BatchLister, before: list[str]) -> list[str]:
    return [batch_id for batch_id in list_batches() if batch_id not in before]


def _wait_deferred(cluster: AirflowCluster, run_id: str, dag_id: str = SCORE_DAG) -> dict[str, Any]:
    """The sensor deferred, its trigger taken, the deferring process's exit processed (the
    batch is kept slow until then: :meth:`AirflowCluster.wait_deferred_and_settled`)."""
    return cluster.wait_deferred_and_settled(dag_id, run_id, "wait", STATE_TIMEOUT)


def _fired(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("event") == "Trigger fired event"]


def _assert_fired_complete(records: list[dict[str, Any]], *batch_ids: str) -> None:
    """The triggerer fired exactly one event: the batches' completion, naming them (the task
    reads their set back from its XCom)."""
    fired = _fired(records)
    assert len(fired) == 1, records
    result = fired[0]["result"]
    assert "'status': 'complete'" in result, result
    assert "'batch_set'" not in result, result
    assert all(batch_id in result for batch_id in batch_ids), result


def _submitted_set(cluster: AirflowCluster, dag_id: str, run_id: str) -> BatchSet:
    """What the Submit task returned (``submit.output``), read back through the API server: the
    batch set, the same value it pushed as ``batch_set`` before waiting."""
    returned = to_batch_set(cluster.api.xcom(dag_id, run_id, "submit"))
    assert to_batch_set(cluster.api.xcom(dag_id, run_id, "submit", "batch_set")) == returned
    assert (returned.service_name, returned.service_version) == ("mtService", "v1.0.0")
    return returned


def _rows(batch_set: BatchSet) -> list[tuple[int | None, int | None]]:
    return [(part.first_row, part.row_count) for part in batch_set.parts]


def _assert_success(cluster: AirflowCluster, dag_id: str, run_id: str) -> None:
    state = cluster.wait_for_run(dag_id, run_id, RUN_TIMEOUT)
    assert state == "success", f"{dag_id}/{run_id} ended {state}\n" + cluster.diagnostics(
        dag_id, run_id
    )


def _assert_partition(partition: Path, batch_ids: list[str]) -> None:
    """The partition holds the 32 scored rows of exactly these batches, manifest last."""
    manifest = json.loads((partition / "manifest.json").read_text())
    table = pd.read_parquet(partition / "outputs.parquet")
    assert manifest["batch_ids"] == batch_ids
    assert manifest["counts"]["rows"] == MTCARS_ROWS
    assert manifest["counts"]["failed_rows"] == 0
    assert len(table) == MTCARS_ROWS
    assert sorted(table["index"]) == list(range(MTCARS_ROWS))
    assert table["success"].all()
    assert table["answer"].between(0, 1).all()


def test_example_dags_import_in_the_dag_processor(cluster: AirflowCluster) -> None:
    """Every example DAG file (and the suite's own) parses in the real DAG processor."""
    cluster.wait_for_every_file()
    assert cluster.api.import_errors() == []
    dag_ids = {dag["dag_id"] for dag in cluster.api.dags()}
    assert {SCORE_DAG, "mrsdeploy_submit_and_wait", RETRY_DAG, BATCH_SET_DAG} <= dag_ids


def test_scheduled_run_updates_the_asset_and_the_report_follows(
    cluster: AirflowCluster,
) -> None:
    """Unpausing the daily example schedules its latest interval; Collect's asset then triggers
    the downstream report DAG, which reads the partition's manifest.

    Runs before the other scenarios, which count batches on the server: the scheduled run is
    the only one the schedule makes while the suite runs.
    """
    cluster.wait_for_dag(REPORT_DAG)  # unpaused: it runs when Collect updates the asset
    cluster.wait_for_dag(SCORE_DAG)

    def scheduled_run() -> dict[str, Any] | None:
        runs = [r for r in cluster.api.dag_runs(SCORE_DAG) if r["run_type"] == "scheduled"]
        return runs[0] if runs else None

    run = cluster.wait_until(f"a scheduled run of {SCORE_DAG}", scheduled_run, STATE_TIMEOUT)
    _assert_success(cluster, SCORE_DAG, run["dag_run_id"])
    partition = cluster.outputs / "mtcars" / str(run["logical_date"])[:10]
    manifest = json.loads((partition / "manifest.json").read_text())
    assert manifest["counts"]["rows"] == MTCARS_ROWS
    _assert_report_ran_on_the_asset(cluster, partition)


def test_score_mtcars_sensor_defers_to_the_triggerer(
    cluster: AirflowCluster, reference_server: ReferenceServer, mtservice_batches: BatchLister
) -> None:
    """The example DAG succeeds with its sensor waiting in the triggerer, and lands 32 rows."""
    run_id = "e2e_score_mtcars"
    destination = cluster.outputs / "score"
    cluster.wait_for_dag(SCORE_DAG)
    before = mtservice_batches()

    with reference_server.faults(service="mtService", rowDelaySeconds=ROW_DELAY):
        cluster.api.trigger(
            SCORE_DAG, run_id, "2026-03-01T00:00:00+00:00", {"destination": str(destination)}
        )
        deferred = _wait_deferred(cluster, run_id)
    assert deferred["trigger"]["classpath"] == TRIGGER_CLASSPATH
    triggerer_id = deferred["trigger"]["triggerer_id"]

    _assert_success(cluster, SCORE_DAG, run_id)
    tis = cluster.api.task_instances(SCORE_DAG, run_id)
    outcome = {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in tis}
    assert outcome == {t: ("success", 1) for t in ("submit", "wait", "collect")}, outcome

    # The trigger ran in the triggerer process: that triggerer logged the event it fired.
    batches = _new_batches(mtservice_batches, before)
    assert len(batches) == 1, batches
    # The Sensor and Collect were given only submit.output: the set named the service.
    submitted = _submitted_set(cluster, SCORE_DAG, run_id)
    assert list(submitted.batch_ids) == batches and _rows(submitted) == [(0, MTCARS_ROWS)]
    events = cluster.trigger_events(SCORE_DAG, run_id, "wait")
    assert list(events) == [triggerer_id], events
    _assert_fired_complete(events[triggerer_id], batches[0])
    _assert_partition(destination / "mtcars" / "2026-03-01", batches)


def _assert_report_ran_on_the_asset(cluster: AirflowCluster, partition: Path) -> None:
    """Collect's asset event scheduled the downstream DAG, which read the partition's manifest."""

    def reported() -> dict[str, Any] | None:
        for run in cluster.api.dag_runs(REPORT_DAG):
            if run["state"] != "success" or run["run_type"] != "asset_triggered":
                continue
            for report in cluster.api.xcom(REPORT_DAG, run["dag_run_id"], "report") or []:
                if str(report["destination"]).rstrip("/") == str(partition):
                    return dict(report)
        return None

    report = cluster.wait_until(f"{REPORT_DAG} to report {partition}", reported, RUN_TIMEOUT)
    assert report["rows"] == MTCARS_ROWS and report["failed_rows"] == 0


def test_deferred_sensor_survives_a_triggerer_restart(
    cluster: AirflowCluster, reference_server: ReferenceServer, mtservice_batches: BatchLister
) -> None:
    """Restarting the triggerer while the sensor is deferred: a new triggerer resumes the wait.

    The old triggerer's shutdown must not cancel the batch (cleanup runs on restart), and
    nothing is submitted twice.
    """
    run_id = "e2e_triggerer_restart"
    destination = cluster.outputs / "restart"
    cluster.wait_for_dag(SCORE_DAG)
    before = mtservice_batches()

    with reference_server.faults(service="mtService", rowDelaySeconds=ROW_DELAY):
        cluster.api.trigger(
            SCORE_DAG, run_id, "2026-03-02T00:00:00+00:00", {"destination": str(destination)}
        )
        deferred = _wait_deferred(cluster, run_id)
        old_triggerer = deferred["trigger"]["triggerer_id"]
        cluster.restart("triggerer")
        assert cluster.api.task_instance(SCORE_DAG, run_id, "wait")["try_number"] == 1

    _assert_success(cluster, SCORE_DAG, run_id)
    wait_ti = cluster.api.task_instance(SCORE_DAG, run_id, "wait")
    assert wait_ti["try_number"] == 1, "the sensor needed a retry"

    events = cluster.trigger_events(SCORE_DAG, run_id, "wait")
    assert old_triggerer in events, events.keys()
    assert _fired(events[old_triggerer]) == [], "the old triggerer fired before its restart"
    new_triggerers = [job for job in events if job != old_triggerer]
    assert len(new_triggerers) == 1, events.keys()
    batches = _new_batches(mtservice_batches, before)
    assert len(batches) == 1, f"expected exactly one batch for the run, got {batches}"
    _assert_fired_complete(events[new_triggerers[0]], batches[0])
    _assert_partition(destination / "mtcars" / "2026-03-02", batches)


def test_worker_killed_mid_submit_retry_reattaches(
    cluster: AirflowCluster, reference_server: ReferenceServer, mtservice_batches: BatchLister
) -> None:
    """SIGKILL the task process while it waits on its batch: the retry waits on the same batch."""
    run_id = "e2e_worker_killed"
    cluster.wait_for_dag(RETRY_DAG)
    before = mtservice_batches()

    with reference_server.faults(service="mtService", rowDelaySeconds=ROW_DELAY):
        cluster.api.trigger(RETRY_DAG, run_id, "2026-04-01T00:00:00+00:00")
        ti = cluster.wait_for_task_state(RETRY_DAG, run_id, "submit", "running", STATE_TIMEOUT)
        started = cluster.wait_until(
            "the batch to appear on the server",
            lambda: _new_batches(mtservice_batches, before),
            STATE_TIMEOUT,
        )
        assert len(started) == 1, started
        # From the moment the batch is in the task's state store, a retry must re-attach.
        cluster.wait_until(
            "the submission to be recorded in the task state store",
            lambda: started[0] in json.dumps(cluster.api.state_store(RETRY_DAG, run_id, "submit")),
            STATE_TIMEOUT,
        )
        runner = cluster.task_runner(ti["id"])
        assert runner is not None, "no task process found\n" + cluster.diagnostics()
        running = cluster.api.task_instance(RETRY_DAG, run_id, "submit")
        assert (running["state"], running["try_number"]) == ("running", 1)
        runner.send_signal(signal.SIGKILL)
        cluster.wait_until(
            "the killed try to be replaced by a retry",
            lambda: cluster.api.task_instance(RETRY_DAG, run_id, "submit")["try_number"] == 2,
            STATE_TIMEOUT,
        )

    _assert_success(cluster, RETRY_DAG, run_id)
    tries = {t["try_number"]: t["state"] for t in cluster.api.tries(RETRY_DAG, run_id, "submit")}
    assert tries == {1: "failed", 2: "success"}
    assert _new_batches(mtservice_batches, before) == started, "the retry started another batch"
    # The retry returned the set the first try recorded, rows included.
    submitted = _submitted_set(cluster, RETRY_DAG, run_id)
    assert list(submitted.batch_ids) == started and _rows(submitted) == [(0, MTCARS_ROWS)]


def test_cli_trigger_without_a_logical_date_lands_the_partition(
    cluster: AirflowCluster, mtservice_batches: BatchLister
) -> None:
    """``airflow dags trigger`` with no logical date (Airflow 3's default for manual runs): the
    example renders its paths from the day the run was triggered for, and lands 32 rows."""
    run_id = "e2e_cli_no_logical_date"
    destination = cluster.outputs / "cli"
    cluster.wait_for_dag(SCORE_DAG)
    before = mtservice_batches()
    conf = json.dumps({"destination": str(destination)})
    triggered = cluster.airflow("dags", "trigger", SCORE_DAG, "--run-id", run_id, "--conf", conf)
    assert triggered.returncode == 0, triggered.stdout + triggered.stderr
    _assert_success(cluster, SCORE_DAG, run_id)
    run = cluster.api.dag_run(SCORE_DAG, run_id)
    assert run["logical_date"] is None, run
    batches = _new_batches(mtservice_batches, before)
    assert len(batches) == 1, batches
    _assert_partition(destination / "mtcars" / str(run["run_after"])[:10], batches)


def test_sensor_and_collect_given_only_the_batch_set_of_a_split_submission(
    cluster: AirflowCluster, reference_server: ReferenceServer, mtservice_batches: BatchLister
) -> None:
    """32 rows in batches of 10: the set Submit returns says which rows each batch holds; the
    Sensor, deferred to the triggerer, and Collect get only ``submit.output`` (no service), and
    the partition holds every row at its input position."""
    run_id = "e2e_batch_set"
    destination = cluster.outputs / "batch_set"
    cluster.wait_for_dag(BATCH_SET_DAG)
    before = mtservice_batches()

    with reference_server.faults(service="mtService", rowDelaySeconds=ROW_DELAY):
        cluster.api.trigger(
            BATCH_SET_DAG, run_id, "2026-05-01T00:00:00+00:00", {"destination": str(destination)}
        )
        deferred = _wait_deferred(cluster, run_id, BATCH_SET_DAG)
    assert deferred["trigger"]["classpath"] == TRIGGER_CLASSPATH
    triggerer_id = deferred["trigger"]["triggerer_id"]

    _assert_success(cluster, BATCH_SET_DAG, run_id)
    tis = cluster.api.task_instances(BATCH_SET_DAG, run_id)
    outcome = {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in tis}
    assert outcome == {t: ("success", 1) for t in ("submit", "wait", "collect")}, outcome

    submitted = _submitted_set(cluster, BATCH_SET_DAG, run_id)
    assert _rows(submitted) == [(0, 10), (10, 10), (20, 10), (30, 2)]
    assert submitted.planned_batches == 4
    assert sorted(submitted.batch_ids) == sorted(_new_batches(mtservice_batches, before))
    events = cluster.trigger_events(BATCH_SET_DAG, run_id, "wait")
    assert list(events) == [triggerer_id], events
    _assert_fired_complete(events[triggerer_id], *submitted.batch_ids)
    _assert_partition(destination, list(submitted.batch_ids))
    table = pd.read_parquet(destination / "outputs.parquet")
    cars = pd.read_csv(mtcars_csv_path())
    assert list(table["index"]) == list(range(MTCARS_ROWS))
    assert list(table["input_hp"]) == list(cars["hp"])  # each row at its input position
    assert list(table["input_wt"]) == list(cars["wt"])
