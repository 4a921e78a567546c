"""Many batches, each waited on by its own deferred sensor: the triggerer-failover scenario.

One task cuts the records (a CSV on shared storage) into Parquet chunk files next to the
destination; a mapped Submit starts one batch per chunk and returns at once; a mapped Sensor
waits on each batch in the triggerers (deferrable); a mapped Collect lands each chunk, with its
inputs, under ``<destination>/chunk=NNNN/``. Nothing passes between tasks but XCom and the
shared storage, so any task may run on any worker.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, ObjectStoragePath, Param, task

from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeploySubmitBatchOperator,
)
from airflow_provider.sensors import MrsDeployBatchSensor

SERVICE = {"service_name": "mtService", "service_version": "v1.0.0"}

with DAG(
    dag_id="mrsdeploy_distributed_waits",
    description="One batch per chunk, each waited on by a deferred sensor, collected per chunk",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "records": Param("s3://moto_s3@lake/records.csv", type="string"),
        "destination": Param("s3://moto_s3@lake/scores", type="string"),
        "chunk_rows": Param(20, type="integer", minimum=1),
        "parallel_count": Param(1, type="integer", minimum=1),
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=2)},
    tags=["mrsdeploy", "distributed"],
) as dag:

    @task
    def cut_into_chunks(params: Any = None) -> list[str]:
        """Write the records as Parquet chunk files on shared storage; return their paths."""
        import pandas as pd

        records = pd.read_csv(ObjectStoragePath(params["records"]).open("rb"))
        staging = ObjectStoragePath(f"{params['destination']}/staging")
        staging.mkdir(parents=True, exist_ok=True)
        size = int(params["chunk_rows"])
        paths = []
        for number, start in enumerate(range(0, len(records), size)):
            path = staging / f"chunk-{number:04d}.parquet"
            with path.open("wb") as handle:
                records.iloc[start : start + size].to_parquet(handle, index=False)
            paths.append(str(path))
        return paths

    @task
    def collect_arguments(batch_sets: Any, chunks: Any, params: Any = None) -> list[dict[str, Any]]:
        """One Collect per chunk: its batch set, its records (for the inputs) and its folder.

        :param batch_sets: what each mapped Submit returned, in map index order.
        :param chunks: the chunk files, in the same order.
        """
        return [
            {
                "batch_id": batch_set,
                "records": chunk,
                "destination": f"{params['destination']}/chunk={number:04d}/",
            }
            for number, (batch_set, chunk) in enumerate(
                zip(list(batch_sets), list(chunks), strict=True)
            )
        ]

    chunks = cut_into_chunks()
    submitted = MrsDeploySubmitBatchOperator.partial(
        task_id="submit", parallel_count="{{ params.parallel_count }}", **SERVICE
    ).expand(records=chunks)
    waits = MrsDeployBatchSensor.partial(
        task_id="wait", deferrable=True, poke_interval=2, timeout=1800
    ).expand(batch_id=submitted.output)
    collected = MrsDeployCollectBatchOperator.partial(task_id="collect").expand_kwargs(
        collect_arguments(submitted.output, chunks)
    )
    waits >> collected
