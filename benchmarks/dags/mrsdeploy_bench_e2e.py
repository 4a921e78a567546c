"""The end-to-end benchmark's DAGs: submit -> deferrable sensor -> collect, as the examples do.

Records and destination come from the run configuration; the service is the benchmark's
``wideService`` (eleven numeric inputs, one output, no files). ``mrsdeploy_bench_e2e`` sends the
records as one batch; ``mrsdeploy_bench_e2e_split`` splits them into batches of at most
``MRSDEPLOY_BENCH_BATCH_ROWS`` rows (250,000 unless set), waits for all of them and collects
them back into one table.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeploySubmitBatchOperator,
)
from airflow_provider.sensors import MrsDeployBatchSensor

BATCH_ROWS = int(os.environ.get("MRSDEPLOY_BENCH_BATCH_ROWS", "250000"))


def bench_dag(dag_id: str, max_records_per_batch: int | None) -> DAG:
    """Submit, wait for and collect the records of the run configuration."""
    with DAG(
        dag_id=dag_id,
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
            max_records_per_batch=max_records_per_batch,
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
    return dag


one_batch = bench_dag("mrsdeploy_bench_e2e", None)
split = bench_dag("mrsdeploy_bench_e2e_split", BATCH_ROWS)
