"""The Submit task's extra link: the batch status page, and the XCom with the server's URL.

The link opens the provider's page in Airflow's API server (:mod:`airflow_provider.ui`), which
shows the batch's state, counts and the status of each row to anyone signed in to Airflow who
may read the task's connection. The server's own address for the batch (pushed as
:data:`XCOM_STATUS_URL`) needs a bearer token of the server: opened from a browser it answers
401, so it stays an XCom for scripts and is no longer the link.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_provider.api import calls, join_url
from airflow_provider.batch_set import XCOM_BATCH_SET, BatchSet
from airflow_provider.exceptions import MrsDeployBatchSetError
from airflow_provider.ui.urls import batch_page_url

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

XCOM_STATUS_URL = "batch_status_url"


def batch_status_url(base_url: str, service_name: str, service_version: str, batch_id: str) -> str:
    """``GET /api/{name}/{version}/batch/{id}`` on the server: the batch's state and counts."""
    return join_url(base_url, calls.get_batch(service_name, service_version, batch_id, False))


def api_base_url() -> str:
    """``[api] base_url`` (empty when unset: the link is then relative to the UI's origin)."""
    from airflow_provider.compat import conf

    return str(conf.get("api", "base_url", fallback="") or "")


class MrsDeployBatchLink(BaseOperatorLink):
    """Link from the task to the status page of the batch it started (the first, if several)."""

    name = "mrsdeploy batch status"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """The batch status page of the task's first batch, on the task's connection.

        Empty when the task pushed no batch set (it failed before starting a batch, or has not
        run), or when a value cannot be put in the page's address (a connection id with a
        ``/``, for instance: the page could not be routed).
        """
        value = pushed_value(ti_key, XCOM_BATCH_SET)
        if value is None:
            return ""
        try:
            batch_set = BatchSet.from_json(value)
        except MrsDeployBatchSetError:  # a foreign value under the key: no link, no failure
            return ""
        conn_id = getattr(operator, "mrsdeploy_conn_id", None)
        if not isinstance(conn_id, str) or not batch_set.batch_ids:
            return ""
        url = batch_page_url(
            api_base_url(),
            conn_id,
            batch_set.service_name,
            batch_set.service_version,
            batch_set.batch_ids[0],
        )
        return url or ""


def pushed_value(ti_key: TaskInstanceKey, key: str) -> Any:
    """The value under ``key`` the task pushed, or None, asked so that a missing value is no
    error.

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
        return XCom.get_value(key=key, ti_key=ti_key)
    values = XCom.get_all(
        key=key,
        dag_id=ti_key.dag_id,
        task_id=ti_key.task_id,
        run_id=ti_key.run_id,
    )
    return values[0] if values else None


def pushed_status_url(ti_key: TaskInstanceKey) -> Any:
    """The value of :data:`XCOM_STATUS_URL` the task pushed, or None (see :func:`pushed_value`)."""
    return pushed_value(ti_key, XCOM_STATUS_URL)
