"""Fixtures of the end-to-end suite: one real Airflow cluster shared by its tests.

The suite runs in its own pytest invocation (``pytest -m e2e tests/e2e``): a cluster is four
Airflow processes and a few GB of memory, so it is skipped inside a parallel (xdist) run rather
than started once per worker.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest
import requests

from tests.e2e.cluster import AirflowCluster
from tests.support.server import ReferenceServer

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO_ROOT / "dags_examples"
E2E_DAGS = Path(__file__).resolve().parent / "dags"

BatchLister = Callable[[], list[str]]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the suite inside xdist workers: it runs alone, after the parallel suite."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    skip = pytest.mark.skip(reason="end-to-end tests run alone: pytest -m e2e tests/e2e")
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="package")
def cluster(
    reference_server: ReferenceServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowCluster]:
    """Scheduler, triggerer, DAG processor and API server, with the example and e2e DAGs.

    ``mrsdeploy_default`` points at the reference server. Everything is stopped at the end,
    also on failure and on Ctrl-C or SIGTERM (turned into KeyboardInterrupt so that teardown
    runs), and the teardown fails if any process of the cluster is left.
    """
    connection = reference_server.airflow_connection()
    dag_files = sorted(EXAMPLE_DAGS.glob("*.py")) + sorted(E2E_DAGS.glob("*.py"))
    airflow = AirflowCluster(
        tmp_path_factory.mktemp("airflow-cluster"),
        dag_files,
        env={"AIRFLOW_CONN_MRSDEPLOY_DEFAULT": json.dumps(connection)},
        # The connection form's Test button (tests/e2e/test_browser.py).
        config={("core", "test_connection"): "Enabled"},
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        airflow.start()
        yield airflow
    finally:
        try:
            airflow.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
    left = airflow.leftover_processes()
    assert not left, f"processes of the cluster still alive after stop: {left}"


@pytest.fixture(scope="package")
def mtservice_batches(reference_server: ReferenceServer) -> BatchLister:
    """List the ids of every ``mtService`` v1.0.0 batch on the reference server."""

    def list_batches() -> list[str]:
        response = requests.get(
            f"{reference_server.url}/api/mtService/v1.0.0/batch",
            headers=reference_server.headers(),
            timeout=30,
        )
        response.raise_for_status()
        return [str(batch_id) for batch_id in response.json()]

    return list_batches
