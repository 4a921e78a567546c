"""Submit and wait on the worker, with retries, then collect to shared storage.

The Submit task polls its batch itself (``deferrable=False``), so losing the worker that runs it
is a crash in the middle of the task; the retry, on whichever worker takes it, must find the
batch the first try started (task state store, in the metadata database) instead of sending
the records again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeploySubmitBatchOperator,
)

with DAG(
    dag_id="mrsdeploy_distributed_retry",
    description="Submit and wait on the worker with retries; collect to shared storage",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "records": Param("s3://moto_s3@lake/records.csv", type="string"),
        "destination": Param("s3://moto_s3@lake/retry", type="string"),
    },
    tags=["mrsdeploy", "distributed"],
) as dag:
    submit = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="mtService",
        service_version="v1.0.0",
        records="{{ params.records }}",
        parallel_count=2,
        wait_for_completion=True,
        deferrable=False,
        poll_interval=1,
        timeout=900,
        retries=2,
        retry_delay=timedelta(seconds=2),
    )
    collect = MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=submit.output,
        destination="{{ params.destination }}/",
        records="{{ params.records }}",
    )
    submit >> collect
