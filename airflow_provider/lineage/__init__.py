"""OpenLineage for Submit and Collect: records -> batch -> destination, with the service facet.

Only the OpenLineage provider calls into this module (through the operators'
``get_openlineage_facets_on_complete``), so its imports stay inside the functions: without the
provider nothing here is ever imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from airflow_provider.batch_set import BatchSet


def location_namespace_and_name(location: str) -> tuple[str, str]:
    """OpenLineage namespace and name of a storage location (no I/O, no connection lookup).

    ``s3://conn@bucket/key`` -> (``s3://bucket``, ``key``); ``/tmp/x`` -> (``file``, ``/tmp/x``).
    """
    parts = urlsplit(location)
    if not parts.scheme or parts.scheme == "file":
        return "file", parts.path or location
    bucket = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{bucket}", parts.path.lstrip("/").rstrip("/") or "/"


def batch_dataset_names(base_url: str, ref: BatchSet) -> list[tuple[str, str]]:
    """Each batch as a dataset on the server: namespace = server, name = service/version/id."""
    return [
        (base_url.rstrip("/"), f"{ref.service_name}/{ref.service_version}/batch/{batch_id}")
        for batch_id in ref.batch_ids
    ]


def operator_lineage(
    *,
    inputs: Sequence[tuple[str, str]],
    outputs: Sequence[tuple[str, str]],
    base_url: str,
    service_name: str,
    service_version: str,
    sql: str | None = None,
) -> Any:
    """Build the ``OperatorLineage`` the OpenLineage provider expects."""
    from airflow.providers.common.compat.openlineage.facet import Dataset, SQLJobFacet
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider.lineage.facets import MrsDeployServiceJobFacet

    job_facets: dict[str, Any] = {
        "mrsdeploy_service": MrsDeployServiceJobFacet(
            server=base_url, service_name=service_name, service_version=service_version
        )
    }
    if sql:
        job_facets["sql"] = SQLJobFacet(query=sql)
    return OperatorLineage(
        inputs=[Dataset(namespace=ns, name=name) for ns, name in inputs],
        outputs=[Dataset(namespace=ns, name=name) for ns, name in outputs],
        job_facets=job_facets,
    )
