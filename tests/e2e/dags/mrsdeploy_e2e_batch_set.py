"""Score in several batches and hand the batch set from task to task.

Submit cuts the 32 mtcars rows into batches of at most 10 and returns the batch set; the Sensor
(deferred to the triggerer) and Collect are given only ``submit.output``: no service name or
version, which they must read from the set, and Collect must put every batch's rows back at
their input positions.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeploySubmitBatchOperator,
)
from airflow_provider.sample_data import mtcars_csv_path
from airflow_provider.sensors import MrsDeployBatchSensor

with DAG(
    dag_id="mrsdeploy_e2e_batch_set",
    description="Submit mtcars in batches of 10; wait and collect given only submit.output",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={"destination": Param("/tmp/mrsdeploy-e2e-batch-set", type="string")},
    tags=["mrsdeploy", "e2e"],
) as dag:
    submit = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="mtService",
        service_version="v1.0.0",
        records=mtcars_csv_path(),
        max_records_per_batch=10,
        parallel_count=10,
    )
    wait = MrsDeployBatchSensor(
        task_id="wait",
        batch_id=submit.output,
        deferrable=True,
        poke_interval=2,
        timeout=600,
    )
    collect = MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=submit.output,
        destination="{{ params.destination }}/",
        records=mtcars_csv_path(),
    )
    submit >> wait >> collect
