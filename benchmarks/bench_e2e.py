"""End to end: a 100,000-row batch through submit -> sensor -> collect with ``dag.test()``.

The DAG (``benchmarks/dags/mrsdeploy_bench_e2e.py``) reads the records from a Parquet file
(eleven numeric columns), scores them on the reference server's ``wideService`` and writes the
outputs table to a local folder. ``dag.test()`` runs the deferred sensor's trigger inline. The
figures are the run's wall time and each task's duration as Airflow recorded it; the sensor's
share is mostly the server running the rows.

Run: ``python -m benchmarks.bench_e2e [--quick]``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO,
    airflow_home,
    connection_env,
    env_with_repo,
    parse_args,
    python,
    ratio,
    reference_server,
    say,
)

DAGS = REPO / "benchmarks" / "dags"


def child(records: str, destination: str, report: str) -> None:
    """Run the DAG once (the environment was prepared by the parent)."""
    from datetime import datetime, timezone

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS)).get_dag("mrsdeploy_bench_e2e")
    started = time.perf_counter()
    run = dag.test(
        logical_date=datetime.now(timezone.utc),
        run_conf={"records": records, "destination": destination},
    )
    seconds = time.perf_counter() - started
    tasks = {
        ti.task_id: (ti.end_date - ti.start_date).total_seconds()
        for ti in run.get_task_instances()
        if ti.start_date and ti.end_date
    }
    Path(report).write_text(json.dumps({"state": str(run.state), "seconds": seconds, **tasks}))


def main() -> None:
    args = parse_args(
        __doc__.split("\n", 1)[0],
        [
            ("--child", {"action": "store_true", "help": "(internal) run the DAG"}),
            ("--records", {"help": "(internal) records file"}),
            ("--destination", {"help": "(internal) output folder"}),
            ("--report", {"help": "(internal) where the child writes its figures"}),
        ],
    )
    if args.child:
        child(args.records, args.destination, args.report)
        return
    import numpy as np
    import pandas as pd

    from benchmarks.bench_submit import make_columns

    rows = 20_000 if args.quick else 100_000
    workdir = Path(tempfile.mkdtemp(prefix="mrsdeploy-bench-e2e-"))
    records = workdir / "records.parquet"
    pd.DataFrame(make_columns(rows)).to_parquet(records)
    home = airflow_home()
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run(
        [airflow, "db", "migrate"], env=env_with_repo(**env), check=True, capture_output=True
    )
    with reference_server(workdir, "--max-parallel-count", "100") as server:
        env["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"] = connection_env(server.url, server.admin_password)
        report_path = workdir / "report.json"
        log_path = workdir / "dag.log"
        with log_path.open("w") as log:
            done = subprocess.run(
                [
                    python(),
                    *("-m", "benchmarks.bench_e2e", "--child", "--records", str(records)),
                    *("--destination", str(workdir / "out"), "--report", str(report_path)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env_with_repo(**env),
                check=False,
            )
        if done.returncode != 0 or not report_path.exists():
            raise RuntimeError(f"the DAG run failed; see {log_path}")
    report: dict[str, Any] = json.loads(report_path.read_text())
    table = pd.read_parquet(workdir / "out" / "outputs.parquet")
    weights = np.array([0.5, -1.25, 2.0, 0.125, -0.75, 1.5, -2.5, 0.0625, 3.0, -0.375, 0.01])
    inputs = pd.read_parquet(records).to_numpy(dtype=float)
    correct = bool(np.allclose(table["score"].to_numpy(), inputs @ weights, rtol=1e-9))
    say(f"end to end: {rows:,} rows x 11 numeric columns, submit -> deferred sensor -> collect")
    say(
        f"  run {report['state']} in {report['seconds']:.1f} s ({rows / report['seconds']:,.0f} "
        f"rows/s); scores correct: {correct}"
    )
    for task in ("submit", "wait", "collect"):
        if task in report:
            say(f"  {task:<8} {report[task]:7.1f} s")
    ratio("e2e_rows_per_second_per_1000", rows / report["seconds"] / 1000)
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
