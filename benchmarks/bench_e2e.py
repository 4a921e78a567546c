"""End to end: submit -> sensor -> collect with ``dag.test()``, one batch and split.

The DAGs (``benchmarks/dags/mrsdeploy_bench_e2e.py``) read the records from a Parquet file
(eleven numeric columns), score them on the reference server's ``wideService`` and write the
outputs table to a local folder. ``dag.test()`` runs the deferred sensor's trigger inline. The
figures are the run's wall time and each task's duration as Airflow recorded it; the sensor's
share is mostly the server running the rows. Two measures:

- one batch: 100,000 rows (20,000 with ``--quick``);
- split: 1,000,000 rows (200,000 with ``--quick``) with ``max_records_per_batch`` a quarter of
  that, so Submit starts four batches, the sensor waits for all of them and Collect merges them
  back. The outputs table must hold every index from 0 to N-1 exactly once, in input order, each
  with the score of its own input row, and the batch set Submit returned (``submit.output``, all
  the Sensor and Collect are given) must name the manifest's batches, each holding its quarter of
  the rows in input order; the benchmark fails otherwise.

Run: ``python -m benchmarks.bench_e2e [--quick]``.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO,
    airflow_home,
    connection_env,
    env_with_repo,
    parse_args,
    ratio,
    reference_server,
    run_logged,
    say,
)

DAGS = REPO / "benchmarks" / "dags"
SPLIT_PARTS = 4


def child(dag_id: str, records: str, destination: str, report: str) -> None:
    """Run the DAG once (the environment was prepared by the parent)."""
    from datetime import datetime

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS)).get_dag(dag_id)
    started = time.perf_counter()
    run = dag.test(
        logical_date=datetime.now(UTC),
        run_conf={"records": records, "destination": destination},
    )
    seconds = time.perf_counter() - started
    tasks = {
        ti.task_id: (ti.end_date - ti.start_date).total_seconds()
        for ti in run.get_task_instances()
        if ti.start_date and ti.end_date
    }
    # dag.test() runs every task in this process: its peak is the whole run's.
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {"state": str(run.state), "seconds": seconds, "peak_mib": peak_mib, **tasks}
    Path(report).write_text(
        json.dumps({**figures, "batch_set": submitted_batch_set(dag_id, run.run_id)})
    )


def submitted_batch_set(dag_id: str, run_id: str) -> Any:
    """What the run's Submit task returned (``submit.output``: the batch set JSON), or None."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    query = XComModel.get_many(run_id=run_id, dag_ids=dag_id, task_ids="submit", key="return_value")
    with create_session() as session:
        row = session.scalars(query).first()
        return None if row is None else XComModel.deserialize_value(row)


def check_batch_set(value: Any, batch_ids: list[str], rows: int, parts: int) -> bool:
    """Whether the batch set Submit returned names the manifest's batches, in order, each
    holding its consecutive share (``rows / parts``) of the input rows."""
    from airflow_provider.batch_set import BatchSet, MrsDeployBatchSetError

    try:
        batch_set = BatchSet.from_json(value)
    except MrsDeployBatchSetError:
        return False
    share = rows // parts
    expected = [(i * share, share) for i in range(parts)]
    return (
        (batch_set.service_name, batch_set.service_version) == ("wideService", "v1")
        and list(batch_set.batch_ids) == batch_ids
        and [(p.first_row, p.row_count) for p in batch_set.parts] == expected
    )


def run_dag(
    workdir: Path, env: dict[str, str], dag_id: str, records: Path, name: str
) -> dict[str, Any]:
    """Run ``dag_id`` once in a child process; its figures, or an error naming its log."""
    report_path = workdir / f"{name}-report.json"
    return run_logged(
        "benchmarks.bench_e2e",
        [
            *("--child", "--dag-id", dag_id),
            *("--records", str(records), "--destination", str(workdir / name)),
            *("--report", str(report_path)),
        ],
        workdir / f"{name}-dag.log",
        report_path,
        **env,
    )


def check_outputs(records: Path, destination: Path) -> tuple[bool, bool, list[str]]:
    """Whether the table holds each index once in input order, whether each score is its own
    row's, and the batch ids the manifest names."""
    import numpy as np
    import pandas as pd

    from benchmarks.services import WIDE_WEIGHTS

    table = pd.read_parquet(destination / "outputs.parquet")
    inputs = pd.read_parquet(records).to_numpy(dtype=float)
    in_order = len(table) == len(inputs) and bool(
        (table["index"].to_numpy() == np.arange(len(inputs))).all()
    )
    correct = in_order and bool(
        np.allclose(table["score"].to_numpy(), inputs @ np.array(WIDE_WEIGHTS), rtol=1e-9)
    )
    manifest = json.loads((destination / "manifest.json").read_text())
    return in_order, correct, list(manifest["batch_ids"])


def show(title: str, rows: int, report: dict[str, Any]) -> None:
    say(title)
    say(
        f"  run {report['state']} in {report['seconds']:.1f} s "
        f"({rows / report['seconds']:,.0f} rows/s)"
    )
    for task in ("submit", "wait", "collect"):
        if task in report:
            say(f"  {task:<8} {report[task]:7.1f} s")
    say(f"  peak memory of the process running the DAG: {report['peak_mib']:,.0f} MiB")


def main() -> None:
    args = parse_args(
        __doc__.split("\n", 1)[0],
        [
            ("--child", {"action": "store_true", "help": "(internal) run the DAG"}),
            ("--dag-id", {"help": "(internal) which DAG"}),
            ("--records", {"help": "(internal) records file"}),
            ("--destination", {"help": "(internal) output folder"}),
            ("--report", {"help": "(internal) where the child writes its figures"}),
        ],
    )
    if args.child:
        child(args.dag_id, args.records, args.destination, args.report)
        return
    import pandas as pd

    from benchmarks.bench_submit import make_columns

    rows = 20_000 if args.quick else 100_000
    split_rows = 200_000 if args.quick else 1_000_000
    batch_rows = split_rows // SPLIT_PARTS
    workdir = Path(tempfile.mkdtemp(prefix="mrsdeploy-bench-e2e-"))
    records = workdir / "records.parquet"
    split_records = workdir / "split-records.parquet"
    pd.DataFrame(make_columns(rows)).to_parquet(records)
    pd.DataFrame(make_columns(split_rows)).to_parquet(split_records)
    home = airflow_home()
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "MRSDEPLOY_BENCH_BATCH_ROWS": str(batch_rows),
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run(
        [airflow, "db", "migrate"], env=env_with_repo(**env), check=True, capture_output=True
    )
    with reference_server(workdir, "--max-parallel-count", "100") as server:
        env["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"] = connection_env(server.url, server.admin_password)
        report = run_dag(workdir, env, "mrsdeploy_bench_e2e", records, "one")
        _, correct, one_ids = check_outputs(records, workdir / "one")
        one_set_right = check_batch_set(report.get("batch_set"), one_ids, rows, 1)
        show(
            f"end to end: {rows:,} rows x 11 numeric columns in one batch, submit -> deferred "
            "sensor -> collect",
            rows,
            report,
        )
        say(f"  scores correct: {correct}; batch set handed over right: {one_set_right}")
        shutil.rmtree(workdir / "one", ignore_errors=True)

        split_report = run_dag(workdir, env, "mrsdeploy_bench_e2e_split", split_records, "split")
        split_in_order, split_correct, batch_ids = check_outputs(split_records, workdir / "split")
        split_set_right = check_batch_set(
            split_report.get("batch_set"), batch_ids, split_rows, SPLIT_PARTS
        )
        show(
            f"split: {split_rows:,} rows x 11 numeric columns, max_records_per_batch="
            f"{batch_rows:,}, submit -> deferred sensor (all batches) -> collect (merged)",
            split_rows,
            split_report,
        )
        say(
            f"  {len(batch_ids)} batches; every index 0..{split_rows - 1:,} present exactly "
            f"once, in input order: {split_in_order}; scores correct: {split_correct}; "
            f"batch set handed over right: {split_set_right}"
        )
    sets_right = one_set_right and split_set_right
    if not (correct and split_correct and sets_right and len(batch_ids) == SPLIT_PARTS):
        raise RuntimeError(f"the outputs are wrong; see the tables under {workdir}")
    ratio("e2e_rows_per_second_per_1000", rows / report["seconds"] / 1000)
    ratio("e2e_split_rows_per_second_per_1000", split_rows / split_report["seconds"] / 1000)
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
