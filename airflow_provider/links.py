"""The operator extra link to a batch's status, and the XCom that carries its URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_provider.api import calls, join_url

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

XCOM_STATUS_URL = "batch_status_url"


def batch_status_url(base_url: str, service_name: str, service_version: str, batch_id: str) -> str:
    """``GET /api/{name}/{version}/batch/{id}`` on the server: the batch's state and counts."""
    return join_url(base_url, calls.get_batch(service_name, service_version, batch_id, False))


class MrsDeployBatchLink(BaseOperatorLink):
    """Link from the task to the status of the batch it started (the first, if several)."""

    name = "mrsdeploy batch status"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """The URL the Submit task pushed to XCom, or nothing before it ran."""
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(key=XCOM_STATUS_URL, ti_key=ti_key)
        return value if isinstance(value, str) else ""
