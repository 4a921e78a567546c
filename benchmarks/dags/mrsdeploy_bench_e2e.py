"""The end-to-end benchmark's DAG: submit -> deferrable sensor -> collect, as the examples do.

Records and destination come from the run configuration; the service is the benchmark's
``wideService`` (eleven numeric inputs, one output, no files).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeploySubmitBatchOperator,
)
from airflow_provider.sensors import MrsDeployBatchSensor

with DAG(
    dag_id="mrsdeploy_bench_e2e",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "records": Param("", type="string"),
        "destination": Param("", type="string"),
    },
    tags=["mrsdeploy", "benchmark"],
) as dag:
    submit = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="wideService",
        service_version="v1",
        records="{{ params.records }}",
        parallel_count=10,
    )
    wait = MrsDeployBatchSensor(
        task_id="wait",
        batch_id=submit.output,
        deferrable=True,
        poke_interval=2,
        timeout=3600,
    )
    collect = MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=submit.output,
        destination="{{ params.destination }}",
    )
    submit >> wait >> collect
