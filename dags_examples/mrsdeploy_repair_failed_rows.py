"""Repair the rows that failed: score mtcars, collect with failures allowed, re-score only the
failed rows and merge them into the same destination, ending with every row successful.

inject faults -> submit (two batches of 16) -> wait -> collect -> repair -> check
                                                             clear faults (teardown)

The failures are transient ones injected into the reference server through its fault hooks
(start it with ``--enable-fault-hooks``; the connection must log in as its admin): rows 3 and
11 of every batch fail the first time their input runs and succeed when submitted again. Against
a real server, leave out the two fault tasks: the repair re-scores whatever failed.
"""

# [START repair_failed_rows]
from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeployRepairFailedRowsOperator,
    MrsDeploySubmitBatchOperator,
)
from airflow_provider.sample_data import mtcars_csv_path
from airflow_provider.sensors import MrsDeployBatchSensor

MTCARS_CSV = mtcars_csv_path()
OUTPUT_ROOT = os.environ.get("MRSDEPLOY_OUTPUT_ROOT", "/tmp/mrsdeploy-scores")
PARTITION = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
DESTINATION = "{{ params.destination }}/repaired/" + PARTITION + "/"
#: Rows (of each batch) that fail on their first run only.
TRANSIENT_FAILURES = {"service": "mtService", "failRows": [3, 11], "failOnce": True}


def reference_server_faults(method: str, config: dict[str, Any] | None = None) -> None:
    """Set (PUT) or clear (DELETE) the reference server's fault configuration as its admin."""
    import requests

    from airflow_provider.hooks import MrsDeployHook

    settings = MrsDeployHook("mrsdeploy_default").settings
    login = requests.post(
        f"{settings.base_url}/login",
        json={"username": settings.username, "password": settings.password},
        verify=settings.verify,
        timeout=30,
    )
    login.raise_for_status()
    response = requests.request(
        method,
        f"{settings.base_url}/_faults",
        json=config,
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        verify=settings.verify,
        timeout=30,
    )
    response.raise_for_status()


with DAG(
    dag_id="mrsdeploy_repair_failed_rows",
    description="Score mtcars, then re-score only the rows that failed and merge them back",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"destination": Param(OUTPUT_ROOT, type="string", description="Root folder")},
    tags=["mrsdeploy", "example"],
) as dag:

    @task
    def inject_transient_failures() -> None:
        reference_server_faults("PUT", TRANSIENT_FAILURES)

    submit = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="mtService",
        service_version="v1.0.0",
        records=MTCARS_CSV,
        max_records_per_batch=16,
    )
    wait = MrsDeployBatchSensor(
        task_id="wait", batch_id=submit.output, deferrable=True, poke_interval=1
    )
    collect = MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=submit.output,
        destination=DESTINATION,
        records=MTCARS_CSV,  # the table keeps the inputs, so the repair can re-send them
        max_failed_rows=None,  # failed rows are written with their error; the repair is next
    )
    repair = MrsDeployRepairFailedRowsOperator(
        task_id="repair",
        destination=DESTINATION,
        max_attempts=3,
        deferrable=True,
        poll_interval=1,
        max_failed_rows=0,  # fail the run if any row still fails after the last attempt
    )

    @task
    def check(summary: dict[str, Any]) -> str:
        succeeded = summary["rows"] - summary["failed_rows"]
        outcome = f"{succeeded} of {summary['rows']} rows successful"
        print(f"{outcome} after {summary['attempts']} repair attempt(s): {summary['table']}")
        return outcome

    @task
    def clear_faults() -> None:
        reference_server_faults("DELETE")

    injected = inject_transient_failures()
    cleared = clear_faults().as_teardown(setups=injected)
    injected >> submit >> wait >> collect >> repair
    check(repair.output) >> cleared
# [END repair_failed_rows]
