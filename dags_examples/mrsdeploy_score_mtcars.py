"""Daily batch scoring of the mtcars records with the ``mtService`` logistic regression.

submit -> wait (deferrable: no worker slot is held) -> collect into
``<destination>/mtcars/<date>/``. The date is the run's logical date, or the day it was
triggered for a run without one (``airflow dags trigger``, the REST API). Re-running a date
rewrites the same partition; the manifest marks it complete.
"""

# [START score_mtcars]
from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, Param

from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeploySubmitBatchOperator,
)
from airflow_provider.sample_data import mtcars_csv_path
from airflow_provider.sensors import MrsDeployBatchSensor

# The demo records ship with the package; point `records` at your own file instead.
MTCARS_CSV = mtcars_csv_path()
OUTPUT_ROOT = os.environ.get("MRSDEPLOY_OUTPUT_ROOT", "/tmp/mrsdeploy-scores")
# The run's logical date; a run triggered without one (Airflow 3's default for manual and API
# runs) has no ``ds``, so it takes the day it was triggered for.
PARTITION = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
# Downstream DAGs schedule on this asset (see mrsdeploy_scores_report.py).
MTCARS_SCORES = Asset("mrsdeploy_scores_mtcars")

with DAG(
    dag_id="mrsdeploy_score_mtcars",
    description="Score the mtcars records with mtService v1.0.0 and land the results",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "records": Param(
            MTCARS_CSV, type="string", description="CSV/TSV/Parquet/JSONL path or URL"
        ),
        "destination": Param(OUTPUT_ROOT, type="string", description="Root folder for outputs"),
    },
    tags=["mrsdeploy", "example"],
) as dag:
    submit = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="mtService",
        service_version="v1.0.0",
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
        destination="{{ params.destination }}/mtcars/" + PARTITION + "/",
        asset=MTCARS_SCORES,
    )
    submit >> wait >> collect
# [END score_mtcars]
