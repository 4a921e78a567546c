"""Test-session Airflow environment, set before anything imports Airflow.

Each pytest-xdist worker gets its own throwaway ``AIRFLOW_HOME`` with a SQLite metadata database,
and the DAGs folder points at ``dags_examples/`` so ``dag.test()`` runs the shipped examples.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
_home = Path(tempfile.mkdtemp(prefix=f"mrsdeploy-airflow-{_worker}-"))

os.environ["AIRFLOW_HOME"] = str(_home)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags_examples")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home / 'airflow.db'}"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
os.environ.setdefault("MRSDEPLOY_OUTPUT_ROOT", str(_home / "outputs"))


# Fixtures shared by the operator, trigger and DAG tests. Imports stay inside the fixtures so
# that nothing imports Airflow before the environment above is in place.
import json  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_token_caches() -> None:
    """Each test starts without tokens cached by an earlier test (they are shared per process)."""
    from airflow_provider.hooks.tokens import forget_shared_tokens

    forget_shared_tokens()
    # Likewise the async sessions shared per event loop (each test runs its own loops).
    from airflow_provider.hooks.async_sessions import forget_shared_sessions

    forget_shared_sessions()


@pytest.fixture
def mrsdeploy_conn(reference_server: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """``mrsdeploy_default`` pointing at the test's reference server, through the environment."""
    connection = reference_server.airflow_connection()
    monkeypatch.setenv("AIRFLOW_CONN_MRSDEPLOY_DEFAULT", json.dumps(connection))
    return "mrsdeploy_default"


@pytest.fixture
def faults(reference_server: Any) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Set the reference server's fault hooks for one test; they are cleared afterwards."""

    def configure(body: dict[str, Any]) -> None:
        reference_server.set_faults(**body)

    yield configure
    reference_server.clear_faults()


class RecordingTaskInstance:
    """The part of a task instance operators use outside a DAG run: XCom push and pull."""

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], Any] = {}
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value", map_indexes: Any = None) -> Any:
        return self.store.get((task_ids, key))

    def publish(self, task_id: str) -> None:
        """Make what the task pushed visible to ``xcom_pull`` under its id, as Airflow does once
        the task deferred (a task that resumes reads back what it pushed)."""
        for key, value in self.pushed.items():
            self.store[(task_id, key)] = value


@pytest.fixture
def task_context() -> dict[str, Any]:
    """A minimal execution context for calling ``execute`` directly."""
    return {"ti": RecordingTaskInstance()}
