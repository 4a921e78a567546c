"""The few calls of Airflow's public REST API (``/api/v2``) the end-to-end tests need.

The cluster runs the simple auth manager with ``simple_auth_manager_all_admins``, so requests
from the test need no credentials (the API server is bound to loopback).
"""

from __future__ import annotations

from typing import Any

import requests

REQUEST_TIMEOUT = 30.0


class AirflowApiError(RuntimeError):
    """A call to the API server answered an unexpected status."""


class AirflowApi:
    """Client of one API server.

    :param base_url: ``http://127.0.0.1:<port>``.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}/api/v2{path}"
        response = self._session.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)
        if response.status_code >= 400:
            raise AirflowApiError(
                f"{method} {path} answered {response.status_code}: {response.text[:500]}"
            )
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        """``/monitor/health``: metadatabase, scheduler, triggerer and dag_processor status."""
        return dict(self._call("GET", "/monitor/health"))

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG, or None while it is not parsed yet."""
        try:
            return dict(self._call("GET", f"/dags/{dag_id}"))
        except AirflowApiError as exc:
            if " 404:" in str(exc):
                return None
            raise

    def dags(self) -> list[dict[str, Any]]:
        """Every DAG the DAG processor stored (``dag_id``, ``fileloc``, ...)."""
        return list(self._call("GET", "/dags", params={"limit": 1000})["dags"])

    def unpause(self, dag_id: str) -> None:
        """Let the scheduler run the DAG's runs."""
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(
        self, dag_id: str, run_id: str, logical_date: str, conf: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create a manual run with an explicit run id and logical date."""
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf or {}}
        return dict(self._call("POST", f"/dags/{dag_id}/dagRuns", json=body))

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The run (``state`` among its fields)."""
        return dict(self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}"))

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of the DAG (``dag_run_id``, ``run_type``, ``state``, ...)."""
        return list(self._call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """A task's XCom value (deserialized)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self._call("GET", path, params={"deserialize": "true"})["value"]

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """One task instance: ``state``, ``try_number``, ``pid``, ``trigger``, ..."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        return dict(self._call("GET", path))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run."""
        body = self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return list(body["task_instances"])

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of a task instance (finished tries and the current one)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        return list(self._call("GET", path)["task_instances"])

    def state_store(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The task instance's state store entries, ``{key: value}``."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/state-store"
        body = self._call("GET", path)
        return {entry["key"]: entry["value"] for entry in body["task_state_store"]}

    def import_errors(self) -> list[dict[str, Any]]:
        """DAG files the DAG processor could not import."""
        return list(self._call("GET", "/importErrors")["import_errors"])

    def jobs(self, job_type: str, alive: bool = True) -> list[dict[str, Any]]:
        """Jobs of one type (``SchedulerJob``, ``TriggererJob``, ...)."""
        params = {"job_type": job_type, "is_alive": str(alive).lower()}
        return list(self._call("GET", "/jobs", params=params)["jobs"])
