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
        """The URL the Submit task pushed to XCom; empty when it pushed none (it failed
        before starting a batch, or has not run)."""
        value = pushed_status_url(ti_key)
        return value if isinstance(value, str) else ""


def pushed_status_url(ti_key: TaskInstanceKey) -> Any:
    """The value of :data:`XCOM_STATUS_URL` the task pushed, or None, asked so that a missing
    value is no error.

    Airflow computes the link when a task ends, failed or not. Asked for a single value
    (``XCom.get_value``), Airflow's API client logs ``XCom not found`` at error level when
    there is none, and a Submit task that failed before starting a batch printed that
    misleading line under its real error. Asked for all of the task's values
    (``XCom.get_all``, a sequence slice), a missing value is just an empty answer. A mapped
    task's values cannot be told apart that way, so its own is asked for directly.
    """
    from airflow.sdk.execution_time.xcom import XCom

    map_index = getattr(ti_key, "map_index", -1)
    if map_index is not None and map_index >= 0:
        return XCom.get_value(key=XCOM_STATUS_URL, ti_key=ti_key)
    values = XCom.get_all(
        key=XCOM_STATUS_URL,
        dag_id=ti_key.dag_id,
        task_id=ti_key.task_id,
        run_id=ti_key.run_id,
    )
    return values[0] if values else None
