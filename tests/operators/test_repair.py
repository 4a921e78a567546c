"""Repairing failed rows against the real reference server: only the failed rows are re-sent,
merged into the same destination, on the blocking and the deferred path; bounded, durable,
idempotent, and refusing what it cannot do safely."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.api import MrsDeployError
from airflow_provider.batch_set import BatchPart, BatchSet
from airflow_provider.compat import TaskDeferred
from airflow_provider.exceptions import (
    MrsDeployFailedRowsError,
    MrsDeployOutputsError,
    MrsDeployRecordsError,
)
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeployRepairFailedRowsOperator,
)
from airflow_provider.operators.submission import StartedBatches
from airflow_provider.outputs import JOURNAL_NAME, MANIFEST_NAME, OutputWriter
from airflow_provider.waiting.tasks import MrsDeployBatchTimeoutError, wait_until_done
from tests.faults.helpers import run_trigger, submit
from tests.support.state_store import MemoryStateStore

SERVICE = ("mtService", "v1.0.0")
CARS = [
    {"hp": 110, "wt": 2.62},
    {"hp": 93, "wt": 2.32},
    {"hp": 245, "wt": 3.84},
    {"hp": 66, "wt": 1.835},
    {"hp": 175, "wt": 3.44},
]


def server_batches() -> set[str]:
    hook = MrsDeployHook()
    try:
        return set(hook.list_batches(*SERVICE))
    finally:
        hook.close()


def scored(
    context: Any, destination: Path, *, records_in_table: bool = False, **collect: Any
) -> dict[str, Any]:
    """Submit CARS (in batches of 3), wait, and collect with failed rows allowed."""
    batch_set = submit(
        context, CARS, SERVICE, wait_for_completion=True, poll_interval=0.1, max_records_per_batch=3
    )
    if records_in_table:
        collect["records"] = CARS
    op = MrsDeployCollectBatchOperator(
        task_id="collect", batch_id=batch_set, destination=str(destination), **collect
    )
    op.execute(context)
    return batch_set


def repair(destination: Path, **kwargs: Any) -> MrsDeployRepairFailedRowsOperator:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poll_interval", 0.1)
    return MrsDeployRepairFailedRowsOperator(
        task_id="repair", destination=str(destination), **kwargs
    )


def worker_lost(writer: OutputWriter, *args: Any) -> str:
    """A writer step that dies as a worker lost mid-task does."""
    raise OSError("worker lost")


def manifest_of(destination: Path) -> dict[str, Any]:
    return dict(json.loads((destination / MANIFEST_NAME).read_text()))


def file_stats(destination: Path) -> dict[str, tuple[int, int]]:
    """Every row file's inode and modification time: a file replaced shows here."""
    files = sorted((destination / "files").rglob("*"))
    return {
        str(p.relative_to(destination)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in files
        if p.is_file()
    }


def check_files(destination: Path, manifest: dict[str, Any]) -> None:
    on_disk = {str(p.relative_to(destination)) for p in (destination / "files").rglob("*")}
    on_disk = {p for p in on_disk if (destination / p).is_file()}
    assert on_disk == {entry["path"] for entry in manifest["files"]}
    for entry in manifest["files"]:
        content = (destination / entry["path"]).read_bytes()
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]


def clean_table(context: Any, destination: Path, **collect: Any) -> pd.DataFrame:
    """The table a collect of CARS without any fault writes (what a repair must end with)."""
    scored(context, destination, **collect)
    return pd.read_parquet(destination / "outputs.parquet")


def test_only_failed_rows_are_resent_and_merged_keeping_other_files(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    expected = clean_table(task_context, tmp_path / "clean")
    faults({"service": "mtService", "failRows": [1], "failOnce": True})
    destination = tmp_path / "scores"
    scored(task_context, destination)
    before = manifest_of(destination)
    assert before["failed_row_indexes"] == [1, 4]  # row 1 of each batch of 3
    kept_before = {k: v for k, v in file_stats(destination).items() if "/1/" not in k}
    batches_before = server_batches()

    summary = repair(destination, records=CARS).execute(task_context)

    assert summary["rows"] == 5 and summary["failed_rows"] == 0 and summary["attempts"] == 1
    new_batches = server_batches() - batches_before
    manifest = manifest_of(destination)
    (record,) = manifest["repairs"]
    assert set(record["batch_ids"]) == new_batches and len(new_batches) == 1
    assert record["rows"] == [1, 4] and record["still_failed"] == []
    assert manifest["batches"][-1] == {
        "batch_id": record["batch_ids"][0],
        "first_row": None,
        "row_count": 2,
        "rows": [1, 4],
    }
    table = pd.read_parquet(destination / "outputs.parquet")
    pd.testing.assert_frame_equal(table, expected)
    # The rows that succeeded kept their files untouched; the repaired rows' are new.
    after = file_stats(destination)
    assert {k: v for k, v in after.items() if k in kept_before} == kept_before
    assert any(path.startswith("files/4/") for path in after)
    check_files(destination, manifest)
    assert not (destination / JOURNAL_NAME).exists()


def test_deferred_repair_reads_inputs_from_the_table(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    """The async path: the attempt waits in a trigger, then merges on resume (CSV table)."""
    faults({"service": "mtService", "failRows": [0, 2], "failOnce": True})
    destination = tmp_path / "scores"
    scored(task_context, destination, records_in_table=True, output_format="csv")
    op = repair(destination, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(task_context)
    trigger = deferred.value.trigger
    # The rows go to XCom; the trigger holds only the ids it polls.
    pushed = BatchSet.from_json(task_context["ti"].pushed["repair_batch_set"])
    assert sorted(r for p in pushed.parts for r in p.rows or ()) == [0, 2, 3]
    assert trigger.serialize()[1]["batch_set"] == pushed.for_polling().to_json()
    payload = run_trigger(trigger)
    task_context["ti"].publish("repair")
    summary = getattr(op, deferred.value.method_name)(
        task_context, event=payload, **(deferred.value.kwargs or {})
    )
    assert summary["failed_rows"] == 0 and summary["attempts"] == 1
    table = pd.read_csv(destination / "outputs.csv")
    assert table["success"].all()
    assert list(table["input_hp"]) == [car["hp"] for car in CARS]
    check_files(destination, manifest_of(destination))


def test_a_resumed_repair_without_its_pushed_rows_merges_nothing(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    """Which rows the attempt's batches re-scored comes from the set it pushed before
    deferring: without it (or with another set there), nothing is merged."""
    faults({"service": "mtService", "failRows": [0, 2], "failOnce": True})
    destination = tmp_path / "scores"
    scored(task_context, destination)
    before = {path: path.read_bytes() for path in destination.rglob("*") if path.is_file()}
    op = repair(destination, records=CARS, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(task_context)
    payload = run_trigger(deferred.value.trigger)
    resume = getattr(op, deferred.value.method_name)
    with pytest.raises(MrsDeployOutputsError, match="cannot tell which rows its batches"):
        resume(task_context, event=payload, **(deferred.value.kwargs or {}))
    other = BatchSet.of_row_maps(SERVICE, [("another-batch", [0, 2])], 1)
    task_context["ti"].store[("repair", "repair_batch_set")] = other.to_json()
    with pytest.raises(MrsDeployError, match="is not the one its trigger waited for"):
        resume(task_context, event=payload, **(deferred.value.kwargs or {}))
    assert {p: p.read_bytes() for p in destination.rglob("*") if p.is_file()} == before
    # Once there, the attempt merges.
    task_context["ti"].publish("repair")
    summary = resume(task_context, event=payload, **(deferred.value.kwargs or {}))
    assert summary["failed_rows"] == 0 and summary["attempts"] == 1


@pytest.mark.parametrize("pushed", [True, False], ids=["pushed-set", "no-pushed-set"])
def test_a_deferred_attempts_timeout_cancels_its_batches_under_its_own_service(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path, pushed: bool
) -> None:
    """What the event says comes first: the batches a timed-out attempt leaves are cancelled
    even when the set it pushed is gone (the event names the service). With the set there, the
    cancel goes to the service the task pushed, never one an event names otherwise."""
    faults({"service": "mtService", "failRows": [0, 2], "failOnce": True})
    destination = tmp_path / "scores"
    scored(task_context, destination)
    faults({"rowDelaySeconds": 10.0})
    op = repair(destination, records=CARS, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(task_context)
    kwargs = dict(deferred.value.kwargs or {})
    (batch_id,) = BatchSet.from_json(task_context["ti"].pushed["repair_batch_set"]).batch_ids
    timeout = {"status": "timeout", "batch_ids": [batch_id], "completed": 0, "total": 2}
    if pushed:
        task_context["ti"].publish("repair")
        named = {"service_name": "otherService", "service_version": "v9"}
    else:
        named = {"service_name": SERVICE[0], "service_version": SERVICE[1]}
    with pytest.raises(MrsDeployBatchTimeoutError, match="cancelled on the server"):
        op.execute_complete(task_context, event=timeout | named, **kwargs)
    assert batch_id not in server_batches()
    if not pushed:
        # Neither a service in the event nor a set in XCom: nothing tells where to cancel.
        with pytest.raises(MrsDeployError, match="without its service, and no batch set"):
            op.execute_complete(task_context, event=timeout, **kwargs)


def test_rows_that_keep_failing_stay_reported_and_attempts_are_bounded(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    faults({"service": "mtService", "failRows": [0]})  # permanent: every run of index 0
    destination = tmp_path / "scores"
    scored(task_context, destination)
    summary = repair(destination, records=CARS, max_attempts=2).execute(task_context)
    # Each attempt re-sends the failing rows as one batch, whose index 0 fails again.
    manifest = manifest_of(destination)
    assert [r["attempt"] for r in manifest["repairs"]] == [1, 2]
    assert manifest["repairs"][0]["rows"] == [0, 3]
    assert manifest["repairs"][0]["still_failed"] == [0]
    assert manifest["repairs"][1]["rows"] == [0]
    assert summary["still_failed_rows"] == [0] and summary["failed_rows"] == 1
    table = pd.read_parquet(destination / "outputs.parquet")
    assert list(table["success"]) == [False, True, True, True, True]
    assert "Injected" in table["error_message"][0]

    # The attempts are used up: another run sends nothing, and can fail on what is left.
    batches = server_batches()
    again = repair(destination, records=CARS, max_attempts=2, max_failed_rows=0)
    with pytest.raises(MrsDeployFailedRowsError, match=r"row 0: .*Injected"):
        again.execute(task_context)
    assert server_batches() == batches
    assert manifest_of(destination)["repairs"] == manifest["repairs"]


def test_nothing_to_repair_sends_nothing(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    destination = tmp_path / "scores"
    scored(task_context, destination)
    manifest = (destination / MANIFEST_NAME).read_text()
    batches = server_batches()
    summary = repair(destination).execute(task_context)
    assert summary["failed_rows"] == 0 and summary["attempts"] == 0
    assert server_batches() == batches
    assert (destination / MANIFEST_NAME).read_text() == manifest


def test_a_destination_without_a_collected_run_is_refused(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    with pytest.raises(MrsDeployOutputsError, match=r"no manifest.json.*Collect operator"):
        repair(tmp_path / "empty").execute(task_context)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / MANIFEST_NAME).write_text('{"batch_ids": ["x"], "table": 3}')
    with pytest.raises(MrsDeployOutputsError, match="cannot be read as a collect manifest"):
        repair(tmp_path / "bad").execute(task_context)


def test_unknown_inputs_are_refused_before_anything_is_sent(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    faults({"service": "mtService", "failRows": [1]})
    destination = tmp_path / "scores"
    scored(task_context, destination)
    batches = server_batches()
    with pytest.raises(MrsDeployRecordsError, match=r"no input_<name> columns.*records="):
        repair(destination).execute(task_context)
    with pytest.raises(MrsDeployRecordsError, match=r"hold 2 rows but .* has 5"):
        repair(destination, records=CARS[:2]).execute(task_context)
    with pytest.raises(MrsDeployRecordsError, match=r"not the rows submitted .*row 4, column 'hp'"):
        bad = [dict(car) for car in CARS]
        bad[4]["hp"] = "fast"
        repair(destination, records=bad).execute(task_context)
    assert server_batches() == batches


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3"])
def test_max_attempts_is_checked_when_the_dag_is_parsed(value: Any) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        MrsDeployRepairFailedRowsOperator(task_id="r", destination="/x", max_attempts=value)


def test_a_retry_after_a_crash_while_merging_reattaches_and_merges(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The try dies after the previous manifest was withdrawn: the journal carries it, the
    state store the attempt's batches; the retry merges them without sending anything."""
    task_context["task_state_store"] = MemoryStateStore()
    faults({"service": "mtService", "failRows": [1], "failOnce": True})
    destination = tmp_path / "scores"
    scored(task_context, destination)
    batches = server_batches()
    real_write_table = OutputWriter.write_table

    monkeypatch.setattr(OutputWriter, "write_table", worker_lost)
    with pytest.raises(OSError, match="worker lost"):
        repair(destination, records=CARS).execute(task_context)
    assert not (destination / MANIFEST_NAME).exists()  # withdrawn while merging
    assert (destination / JOURNAL_NAME).exists()
    started = server_batches() - batches
    assert len(started) == 1

    monkeypatch.setattr(OutputWriter, "write_table", real_write_table)
    summary = repair(destination, records=CARS).execute(task_context)
    assert summary["failed_rows"] == 0
    assert server_batches() - batches == started  # re-attached: nothing sent again
    manifest = manifest_of(destination)
    assert [r["batch_ids"] for r in manifest["repairs"]] == [sorted(started)]
    check_files(destination, manifest)
    assert task_context["task_state_store"].values == {}  # forgotten once merged


def test_collecting_again_keeps_the_repaired_rows(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    faults({"service": "mtService", "failRows": [2], "failOnce": True})
    destination = tmp_path / "scores"
    batch_set = scored(task_context, destination)
    repair(destination, records=CARS).execute(task_context)
    repaired = manifest_of(destination)
    MrsDeployCollectBatchOperator(
        task_id="collect", batch_id=batch_set, destination=str(destination)
    ).execute(task_context)
    manifest = manifest_of(destination)
    assert manifest["failed_row_indexes"] == []
    assert manifest["repairs"] == repaired["repairs"]
    assert manifest["batches"] == repaired["batches"]
    assert pd.read_parquet(destination / "outputs.parquet")["success"].all()
    check_files(destination, manifest)


def test_repairs_edited_to_hold_an_escaped_lone_surrogate_are_carried_by_the_next_collect(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    """JSON may escape a lone surrogate (``"\\udc80"``), which has no UTF-8 form. A repair record
    edited to hold one is copied into the next run's manifest: that run lands its files and
    writes its manifest (escaped as it came) instead of failing at its very end, every time."""
    faults({"service": "mtService", "failRows": [2], "failOnce": True})
    destination = tmp_path / "scores"
    batch_set = scored(task_context, destination)
    repair(destination, records=CARS).execute(task_context)
    edited = manifest_of(destination)
    edited["repairs"][0]["note"] = "checked by \udc80"
    (destination / MANIFEST_NAME).write_text(json.dumps(edited))  # ASCII, escaped
    MrsDeployCollectBatchOperator(
        task_id="collect", batch_id=batch_set, destination=str(destination)
    ).execute(task_context)
    manifest = manifest_of(destination)
    assert manifest["repairs"] == edited["repairs"]
    assert manifest["failed_row_indexes"] == []
    check_files(destination, manifest)
    assert not (destination / JOURNAL_NAME).exists()
    # A repair reads that manifest too (nothing is left to repair).
    assert repair(destination, records=CARS).execute(task_context)["failed_rows"] == 0
    assert manifest_of(destination)["repairs"] == edited["repairs"]


def test_a_destination_repaired_meanwhile_by_another_task_is_not_overwritten(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    faults({"service": "mtService", "failRows": [2], "failOnce": True})
    destination = tmp_path / "scores"
    scored(task_context, destination)
    repair(destination, records=CARS).execute(task_context)
    merged = (destination / MANIFEST_NAME).read_text()
    # A second worker finishes its own attempt 1 after the first one merged.
    hook = MrsDeployHook()
    late_id = hook.start_batch(*SERVICE, json.dumps(CARS[2:3]).encode())
    hook.close()
    late = BatchSet(*SERVICE, (BatchPart(late_id, rows=(2,)),))
    op = repair(destination, records=CARS)
    op._started = StartedBatches(SERVICE)
    with pytest.raises(MrsDeployOutputsError, match="another task repaired it meanwhile"):
        op._merge_and_go_on(task_context, 1, late, None)
    assert (destination / MANIFEST_NAME).read_text() == merged


def test_a_repair_batch_that_disagrees_with_its_row_map_is_refused(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """A hostile or broken answer: a repair batch with fewer results than rows it replaces,
    or replacing a row the table does not have, is refused before anything is written."""
    destination = tmp_path / "scores"
    batch_set = BatchSet.from_json(scored(task_context, destination))
    before = (destination / MANIFEST_NAME).read_text()
    hook = MrsDeployHook()
    one_row = hook.start_batch(*SERVICE, json.dumps(CARS[:1]).encode())
    wait_until_done(
        hook,
        BatchSet.of_ids(SERVICE, [one_row]),
        poll_interval=0.1,
        deadline=None,
        cancel_on_timeout=True,
    )
    hook.close()
    for rows, message in (((0, 1), "returned 1 results, but 2 rows"), ((7,), "replaces row 7")):
        bad = batch_set.extended([BatchPart(one_row, rows=rows)])
        collect = MrsDeployCollectBatchOperator(
            task_id="collect", batch_id=bad, destination=str(destination)
        )
        with pytest.raises(MrsDeployError, match=message):
            collect.execute(task_context)
        assert (destination / MANIFEST_NAME).read_text() == before


def test_records_that_changed_since_submit_are_refused_before_anything_is_sent(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    faults({"service": "mtService", "failRows": [1]})
    destination = tmp_path / "scores"
    scored(task_context, destination)
    batches = server_batches()
    changed = [dict(car) for car in CARS]
    changed[0]["hp"] = 111  # a row that did not even fail: still other records
    with pytest.raises(MrsDeployRecordsError, match="not the rows submitted"):
        repair(destination, records=changed).execute(task_context)
    assert server_batches() == batches


#: Other cars, submitted by a later run of the DAG into the same destination.
OTHER_CARS = [{"hp": 300 + 10 * i, "wt": 5.0 + i / 10} for i in range(len(CARS))]


def collect_other_run(context: Any, destination: Path) -> pd.DataFrame:
    """A later run's clean collect of OTHER_CARS into ``destination``; its table."""
    batch_set = submit(
        context,
        OTHER_CARS,
        SERVICE,
        wait_for_completion=True,
        poll_interval=0.1,
        max_records_per_batch=3,
    )
    MrsDeployCollectBatchOperator(
        task_id="collect", batch_id=batch_set, destination=str(destination), records=OTHER_CARS
    ).execute(context)
    return pd.read_parquet(destination / "outputs.parquet")


def test_a_deferred_attempt_is_not_merged_into_a_run_collected_meanwhile(
    mrsdeploy_conn: str, task_context: Any, faults: Any, tmp_path: Path
) -> None:
    """Rows of the first run failed; while their repair ran, a later run's collect
    replaced the destination. Merged by index, the first run's re-scored rows 1 and 3 went into
    the later run's table beside its inputs, and the task reported no failed row."""
    faults({"service": "mtService", "failRows": [1, 3], "failOnce": True})
    destination = tmp_path / "scores"
    scored(task_context, destination, records_in_table=True)
    op = repair(destination, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(task_context)
    other = collect_other_run(task_context, destination)
    manifest = (destination / MANIFEST_NAME).read_text()
    payload = run_trigger(deferred.value.trigger)
    task_context["ti"].publish("repair")
    with pytest.raises(MrsDeployOutputsError, match="changed while repair attempt 1 ran"):
        getattr(op, deferred.value.method_name)(
            task_context, event=payload, **(deferred.value.kwargs or {})
        )
    assert (destination / MANIFEST_NAME).read_text() == manifest
    pd.testing.assert_frame_equal(pd.read_parquet(destination / "outputs.parquet"), other)


def test_a_retry_does_not_take_an_earlier_runs_attempt_for_the_run_there_now(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The try that started attempt 1 for the first run died; a later run's collect, with the
    same row numbers failing, replaced the destination. The retry re-attached to the recorded
    attempt (same row numbers) and merged the first run's results into the later run's rows."""
    task_context["task_state_store"] = MemoryStateStore()
    faults({"service": "mtService", "failRows": [1, 3], "failOnce": True})
    destination = tmp_path / "scores"
    scored(task_context, destination, records_in_table=True)

    real_write_table = OutputWriter.write_table
    monkeypatch.setattr(OutputWriter, "write_table", worker_lost)
    with pytest.raises(OSError, match="worker lost"):
        repair(destination).execute(task_context)
    monkeypatch.setattr(OutputWriter, "write_table", real_write_table)
    faults({"service": "mtService", "failRows": [1, 3], "failOnce": True})
    collect_other_run(task_context, destination)
    batches = server_batches()
    summary = repair(destination).execute(task_context)
    assert summary["failed_rows"] == 0
    assert len(server_batches() - batches) == 1  # re-scored afresh, for this run's rows
    table = pd.read_parquet(destination / "outputs.parquet")
    assert list(table["input_hp"]) == [car["hp"] for car in OTHER_CARS]
    faults({})
    clean = collect_other_run(task_context, tmp_path / "clean")
    pd.testing.assert_frame_equal(table, clean)


def test_a_destination_whose_last_collect_did_not_finish_is_not_reported_repaired(
    mrsdeploy_conn: str,
    task_context: Any,
    faults: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A later run's collect died after landing its table, before its manifest: the repair read
    the earlier run from the journal, found nothing to repair and reported the destination
    complete, without a manifest, holding the other run's table."""
    destination = tmp_path / "scores"
    scored(task_context, destination, records_in_table=True)

    monkeypatch.setattr(OutputWriter, "finish", worker_lost)
    with pytest.raises(OSError, match="worker lost"):
        collect_other_run(task_context, destination)
    assert not (destination / MANIFEST_NAME).exists() and (destination / JOURNAL_NAME).exists()
    batches = server_batches()
    with pytest.raises(MrsDeployOutputsError, match="has no manifest: the last collect"):
        repair(destination).execute(task_context)
    assert server_batches() == batches  # nothing sent
    assert not (destination / MANIFEST_NAME).exists()
