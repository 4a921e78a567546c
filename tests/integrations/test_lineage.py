"""OpenLineage facets: records file -> batch -> destination, with the service as a job facet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider.batch_set import BatchSet
from airflow_provider.lineage import location_namespace_and_name
from airflow_provider.operators import MrsDeployCollectBatchOperator, MrsDeploySubmitBatchOperator
from airflow_provider.sample_data import mtcars_csv_path


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://aws_conn@lake/scores/2026-01-01/", ("s3://lake", "scores/2026-01-01")),
        ("gs://bucket/cars.parquet", ("gs://bucket", "cars.parquet")),
        ("/data/cars.csv", ("file", "/data/cars.csv")),
        ("file:///data/out/", ("file", "/data/out/")),
    ],
)
def test_location_namespace_and_name(location: str, expected: tuple[str, str]) -> None:
    assert location_namespace_and_name(location) == expected


def test_submit_and_collect_lineage(
    reference_server: Any, mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    submit = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="mtService",
        service_version="v1.0.0",
        records=mtcars_csv_path(),
        wait_for_completion=True,
        poll_interval=0.1,
    )
    output = submit.execute(task_context)
    (batch_id,) = BatchSet.from_json(output).batch_ids
    submitted = submit.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in submitted.inputs] == [("file", mtcars_csv_path())]
    batch_dataset = (reference_server.url, f"mtService/v1.0.0/batch/{batch_id}")
    assert [(d.namespace, d.name) for d in submitted.outputs] == [batch_dataset]
    facet = submitted.job_facets["mrsdeploy_service"]
    assert (facet.service_name, facet.service_version) == ("mtService", "v1.0.0")

    # Given only the set (submit.output), Collect still knows the service it names.
    collect = MrsDeployCollectBatchOperator(
        task_id="collect", batch_id=output, destination=str(tmp_path)
    )
    collect.execute(task_context)
    collected = collect.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in collected.inputs] == [batch_dataset]
    facet = collected.job_facets["mrsdeploy_service"]
    assert (facet.service_name, facet.service_version) == ("mtService", "v1.0.0")
    assert [(d.namespace, d.name) for d in collected.outputs] == [("file", str(tmp_path))]
