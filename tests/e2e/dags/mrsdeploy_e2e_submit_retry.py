"""Submit and wait on the worker, with one retry: the end-to-end crash-and-retry scenario.

The Submit task polls the batch itself (``deferrable=False``), so killing its process while the
batch runs is a worker crash in the middle of the task; the retry must find the batch the first
try started instead of sending the records again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider.operators import MrsDeploySubmitBatchOperator
from airflow_provider.sample_data import mtcars_csv_path

with DAG(
    dag_id="mrsdeploy_e2e_submit_retry",
    description="Submit mtcars and wait on the worker; one quick retry",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["mrsdeploy", "e2e"],
) as dag:
    MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="mtService",
        service_version="v1.0.0",
        records=mtcars_csv_path(),
        parallel_count=10,
        wait_for_completion=True,
        deferrable=False,
        poll_interval=1,
        timeout=600,
        retries=1,
        retry_delay=timedelta(seconds=2),
    )
