"""Fixtures of the distributed suite: one deployment shared by its tests, and its report.

The deployment is PostgreSQL, Redis, moto's S3 server, the reference server and seven Airflow
processes (API server, scheduler, DAG processor, two triggerers, two Celery workers), all on
loopback, so the suite runs in its own pytest invocation
(``pytest -m "e2e and distributed" tests/distributed``) and is skipped inside a parallel
(xdist) run.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests.distributed import report
from tests.distributed.cluster import DistributedCluster
from tests.distributed.deployment import BUCKET, S3_CONN_ID, Deployment
from tests.distributed.services import PostgresServer, RedisServer, S3Server
from tests.e2e.cluster import MARKER
from tests.support.server import ReferenceServer

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = [
    REPO_ROOT / "dags_examples" / "mrsdeploy_score_in_chunks.py",
    *sorted((Path(__file__).resolve().parent / "dags").glob("*.py")),
]
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never ask an instance-metadata endpoint for credentials: everything stays on loopback.
    "AWS_EC2_METADATA_DISABLED": "true",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the suite inside xdist workers: it runs alone, after the parallel suite."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    skip = pytest.mark.skip(
        reason='distributed tests run alone: pytest -m "e2e and distributed" tests/distributed'
    )
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per scenario: wall time, batches on the server against planned, rows."""
    if not report.REPORTS:
        return
    terminalreporter.section("distributed deployment: scenarios")
    for entry in report.REPORTS:
        terminalreporter.write_line(entry.line())


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _stop_all(stoppers: list[Callable[[], None]]) -> None:
    """Call every stopper, even after one failed; then raise the first failure."""
    errors: list[BaseException] = []
    for stop in stoppers:
        try:
            stop()
        except BaseException as exc:  # every process must still be stopped
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture(scope="package")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Start the whole deployment; stop every process of it at the end, even on failure.

    Ctrl-C and SIGTERM are turned into KeyboardInterrupt so that teardown runs; the teardown
    fails if any process of the deployment is left.
    """
    import boto3

    root = tmp_path_factory.mktemp("distributed-cluster")
    logs = root / "process-logs"
    logs.mkdir()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    stoppers: list[Callable[[], None]] = []
    cluster: DistributedCluster | None = None
    try:
        server = ReferenceServer(
            root / "reference-server",
            extra_args=("--enable-fault-hooks", "--max-concurrent-batches", "32"),
            start=False,
        )
        stoppers.append(server.stop)
        server.start()
        base_env = {
            key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")
        }
        postgres = PostgresServer(logs, base_env)
        redis = RedisServer(root, logs, base_env)
        s3_server = S3Server(root, logs, base_env)
        s3_connection = {
            "conn_type": "aws",
            "login": AWS_ENV["AWS_ACCESS_KEY_ID"],
            "password": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            "extra": {"endpoint_url": s3_server.endpoint, "region_name": "us-east-1"},
        }
        mrsdeploy_connection = json.dumps(server.airflow_connection())
        cluster = DistributedCluster(
            root,
            DAG_FILES,
            database_url=postgres.url,
            broker_url=redis.url,
            result_backend=f"db+{postgres.url}",
            env={
                "AIRFLOW_CONN_MRSDEPLOY_DEFAULT": mrsdeploy_connection,
                f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": json.dumps(s3_connection),
                **AWS_ENV,
            },
            extra_folders=[postgres.base],
        )
        # The servers carry the deployment's marker too: the final sweep finds them.
        for process in (postgres.process, redis.process, s3_server.process):
            process.env[MARKER] = cluster.marker
        stoppers = [cluster.stop, s3_server.stop, redis.stop, postgres.stop, *stoppers]
        postgres.start()
        redis.start()
        s3_server.start()
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_server.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        cluster.start()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AIRFLOW_CONN_MRSDEPLOY_DEFAULT", mrsdeploy_connection)
            from airflow_provider.hooks import MrsDeployHook

            hook = MrsDeployHook("mrsdeploy_default")
            try:
                yield Deployment(cluster, postgres, server, s3, hook)
            finally:
                hook.close()
    finally:
        try:
            _stop_all(stoppers)
        finally:
            signal.signal(signal.SIGTERM, previous)
            report.write_json(root / "scenarios.json")
    if cluster is not None:
        left = cluster.leftover_processes()
        assert not left, f"processes of the deployment still alive after stop: {left}"
