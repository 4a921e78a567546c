"""The custom OpenLineage job facet naming the scoring service (needs the OpenLineage client)."""

from __future__ import annotations

import attr
from openlineage.client.generated.base import JobFacet

SCHEMA_URL = "airflow-provider-mrsdeploy#/definitions/MrsDeployServiceJobFacet"


@attr.define
class MrsDeployServiceJobFacet(JobFacet):
    """The published service a task used: server, name and version."""

    server: str
    service_name: str
    service_version: str

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_URL
