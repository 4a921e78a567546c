"""429/503 bursts with ``Retry-After`` on submit, status polling and file download."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from airflow_provider.hooks import MrsDeployHook
from tests.faults.conftest import ConnSetter
from tests.faults.helpers import (
    CARS,
    MT,
    batch_trigger,
    check_manifest,
    collect,
    only_id,
    run_trigger,
    sensor,
    submit,
)
from tests.hooks.helpers import http_faults_left, wait_terminal
from tests.support.server import ReferenceServer

STATUS_PATH = r"/batch/[^/]+$"


def burst(status: int, count: int, method: str, path_regex: str) -> dict[str, Any]:
    return {
        "status": status,
        "count": count,
        "retryAfter": 1,
        "method": method,
        "pathRegex": path_regex,
    }


def test_bursts_on_submit_poll_and_download(
    fast_conn: str,
    reference_server: ReferenceServer,
    task_context: Any,
    tmp_path: Path,
    all_logs: Callable[[], str],
) -> None:
    hook = MrsDeployHook()
    before = set(hook.list_batches(*MT))
    bursts = [
        burst(503, 2, "POST", r"/batch$"),
        burst(429, 2, "GET", STATUS_PATH),
        burst(503, 1, "GET", r"/files/answer\.png$"),
        burst(429, 1, "GET", r"/files/answer\.csv$"),
    ]
    with reference_server.faults(httpErrors=bursts):
        batch_set = submit(task_context, CARS)
        sensor(batch_set).execute(task_context)
        result = collect(task_context, batch_set, tmp_path / "out")
        assert http_faults_left(reference_server) == [0, 0, 0, 0]  # every burst was served

    # Exactly one batch created, holding every row.
    assert set(hook.list_batches(*MT)) - before == {only_id(batch_set)}
    hook.close()
    assert result["rows"] == 4 and result["failed_rows"] == 0
    table = pd.read_parquet(tmp_path / "out" / "outputs.parquet")
    assert list(table["index"]) == [0, 1, 2, 3] and table["success"].all()
    manifest = check_manifest(tmp_path / "out")
    assert sorted((f["index"], f["name"]) for f in manifest["files"]) == [
        (i, name) for i in range(4) for name in ("answer.csv", "answer.png")
    ]
    logs = all_logs()
    # Every injected answer caused one logged retry that names the status and the wait asked.
    retries = [line for line in logs.splitlines() if "retrying in" in line]
    assert sum("-> 503" in line for line in retries) == 3, retries
    assert sum("-> 429" in line for line in retries) == 3, retries
    assert all("Retry-After 1 s" in line for line in retries), retries


def test_trigger_rides_out_a_burst_longer_than_the_hook_retries(
    reference_server: ReferenceServer,
    set_default_conn: ConnSetter,
    all_logs: Callable[[], str],
) -> None:
    """The hook gives up after one retry; the trigger logs the failed poll and polls again."""
    set_default_conn(reference_server.port, reference_server.admin_password, max_retries=1)
    hook = MrsDeployHook()
    batch_id = hook.start_batch(*MT, b'[{"hp": 120, "wt": 2.8}]')
    wait_terminal(hook, MT, batch_id)
    hook.close()
    with reference_server.faults(httpErrors=[burst(503, 3, "GET", STATUS_PATH)]):
        payload = run_trigger(batch_trigger([batch_id]))
        assert http_faults_left(reference_server) == [0]
    assert payload["status"] == "complete"
    assert payload["completed"] == payload["total"] == 1
    logs = all_logs()
    assert "Polling batch status failed, will poll again" in logs
    assert "Retry-After 1 s" in logs
