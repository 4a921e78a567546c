"""Very large inputs: split the records into chunk files and map one batch per chunk.

The Submit operator can split a large input itself (``max_records_per_batch``), but one task then
holds the whole input. Dynamic task mapping spreads the work instead: one task cuts the records
into chunk files, a mapped Submit (deferrable: it waits in the triggerer) scores each chunk as
its own batch, and a mapped Collect lands each chunk under
``<destination>/chunks/<date>/chunk=NNNN/`` (the run's logical date, or the day it was
triggered for a run without one). A failed chunk is retried alone.
"""

# [START score_in_chunks]
from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, ObjectStoragePath, Param, task

from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeploySubmitBatchOperator,
)
from airflow_provider.sample_data import mtcars_csv_path

OUTPUT_ROOT = os.environ.get("MRSDEPLOY_OUTPUT_ROOT", "/tmp/mrsdeploy-scores")
# The run's logical date, or the day it was triggered for a run without one.
PARTITION = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
SERVICE = {"service_name": "mtService", "service_version": "v1.0.0"}

with DAG(
    dag_id="mrsdeploy_score_in_chunks",
    description="Score a large input as one mapped batch per chunk",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "records": Param(mtcars_csv_path(), type="string"),
        "destination": Param(OUTPUT_ROOT, type="string"),
        "chunk_rows": Param(10, type="integer", minimum=1),
    },
    tags=["mrsdeploy", "example"],
) as dag:

    @task
    def cut_into_chunks(partition: str, params: Any = None) -> list[str]:
        """Write the records as Parquet chunk files; return their paths, in input order."""
        import pandas as pd

        records = pd.read_csv(ObjectStoragePath(params["records"]).open("rb"))
        staging = ObjectStoragePath(f"{params['destination']}/chunks/{partition}/staging")
        staging.mkdir(parents=True, exist_ok=True)
        paths = []
        size = int(params["chunk_rows"])
        for number, start in enumerate(range(0, len(records), size)):
            path = staging / f"chunk-{number:04d}.parquet"
            with path.open("wb") as handle:
                records.iloc[start : start + size].to_parquet(handle, index=False)
            paths.append(str(path))
        return paths

    @task
    def collect_arguments(
        batch_sets: list[dict[str, Any]], partition: str, params: Any = None
    ) -> list[dict[str, Any]]:
        """One Collect per chunk: the batch set its Submit returned, and its own folder."""
        root = f"{params['destination']}/chunks/{partition}"
        return [
            {"batch_id": batch_set, "destination": f"{root}/chunk={number:04d}/"}
            for number, batch_set in enumerate(batch_sets)
        ]

    submitted = MrsDeploySubmitBatchOperator.partial(
        task_id="submit", deferrable=True, poll_interval=2, **SERVICE
    ).expand(records=cut_into_chunks(PARTITION))
    MrsDeployCollectBatchOperator.partial(task_id="collect", **SERVICE).expand_kwargs(
        collect_arguments(submitted.output, PARTITION)
    )
# [END score_in_chunks]
