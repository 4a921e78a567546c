"""One task submits and waits (deferred), then the outputs land as CSV beside their inputs.

The single-task form suits short batches: the Submit operator defers to the triggerer itself, so
no sensor is needed, and Collect writes the input columns next to each row's answer.
"""

# [START submit_and_wait]
from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeploySubmitBatchOperator,
)

OUTPUT_ROOT = os.environ.get("MRSDEPLOY_OUTPUT_ROOT", "/tmp/mrsdeploy-scores")

# Records can be given inline as a list of dicts (sent as given, never rendered as templates).
CARS = [
    {"model": "Mazda RX4", "hp": 110, "wt": 2.62},
    {"model": "Datsun 710", "hp": 93, "wt": 2.32},
    {"model": "Hornet 4 Drive", "hp": 110, "wt": 3.215},
    {"model": "Camaro Z28", "hp": 245, "wt": 3.84},
    {"model": "Lotus Europa", "hp": 113, "wt": 1.513},
]

with DAG(
    dag_id="mrsdeploy_submit_and_wait",
    description="Submit and wait in one deferrable task, collect as CSV with inputs",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"destination": Param(OUTPUT_ROOT, type="string")},
    tags=["mrsdeploy", "example"],
) as dag:
    score = MrsDeploySubmitBatchOperator(
        task_id="score",
        service_name="mtService",
        service_version="v1.0.0",
        records=CARS,
        deferrable=True,
        poll_interval=2,
        timeout=1800,
    )
    collect = MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=score.output,
        destination="{{ params.destination }}/submit_and_wait/{{ run_id }}/",
        output_format="csv",
        records=CARS,
    )
    score >> collect
# [END submit_and_wait]
