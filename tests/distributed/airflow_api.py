"""The REST API calls of the e2e client, plus those mapped tasks need (``map_index``)."""

from __future__ import annotations

from typing import Any

from tests.e2e.airflow_api import AirflowApi

#: Page size asked for; the deployment sets ``[api] maximum_page_limit`` to match.
PAGE_LIMIT = 1000


class MappedApi(AirflowApi):
    """:class:`~tests.e2e.airflow_api.AirflowApi` with the mapped task instance calls."""

    def _run_path(self, dag_id: str, run_id: str) -> str:
        return f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"

    def mapped(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every mapped instance of a task, by map index."""
        path = f"{self._run_path(dag_id, run_id)}/{task_id}/listMapped"
        body = self._call("GET", path, params={"limit": PAGE_LIMIT})
        return sorted(body["task_instances"], key=lambda ti: int(ti["map_index"]))

    def tries_at(
        self, dag_id: str, run_id: str, task_id: str, map_index: int
    ) -> list[dict[str, Any]]:
        """Every try of one mapped instance."""
        path = f"{self._run_path(dag_id, run_id)}/{task_id}/{map_index}/tries"
        return list(self._call("GET", path)["task_instances"])

    def xcom_at(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, key: str = "return_value"
    ) -> Any:
        """A mapped instance's XCom value (deserialized)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        params = {"deserialize": "true", "map_index": str(map_index)}
        return self._call("GET", path, params=params)["value"]

    def run_task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, mapped ones included."""
        body = self._call("GET", self._run_path(dag_id, run_id), params={"limit": PAGE_LIMIT})
        return list(body["task_instances"])
