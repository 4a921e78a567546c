"""The server restarts while the trigger waits on a batch: the wait ends complete, every row is
there exactly once, and collect lands them all.

The connection goes through the fault proxy, which reads the server's port for each new
connection, so the test holds even if the restarted server had to take another port. Hook
retries are off (``max_retries`` 0) so every poll that fails during the restart reaches the
trigger, which must log it and poll again rather than fail the task.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from airflow_provider.hooks import MrsDeployHook
from tests.conftest import ServerFactory
from tests.faults.conftest import ConnSetter
from tests.faults.helpers import (
    ECHO,
    batch_trigger,
    check_manifest,
    collect,
    echo_rows,
    first_event,
)
from tests.faults.proxy import FaultProxy

ROWS = echo_rows(12)


def test_restart_mid_batch_while_the_trigger_waits(
    server_factory: ServerFactory,
    set_default_conn: ConnSetter,
    task_context: Any,
    tmp_path: Path,
    all_logs: Callable[[], str],
) -> None:
    server = server_factory("--enable-fault-hooks")
    with FaultProxy(lambda: ("127.0.0.1", server.port)) as proxy:
        set_default_conn(proxy.port, server.admin_password, max_retries=0)
        hook = MrsDeployHook()
        server.set_faults(rowDelaySeconds=0.5)  # in memory: gone after the restart
        batch_id = hook.start_batch(*ECHO, json.dumps(ROWS).encode(), parallel_count=2)

        async def wait_through_restart() -> tuple[dict[str, Any], int]:
            waiting = asyncio.ensure_future(
                first_event(batch_trigger([batch_id], ECHO, poll_interval=0.2))
            )
            while True:  # restart once some rows, not all, are finished
                status = await asyncio.to_thread(hook.get_batch_status, *ECHO, batch_id)
                if status.completed_item_count >= 2:
                    break
                await asyncio.sleep(0.1)
            await asyncio.to_thread(server.restart)
            event = await waiting
            return dict(event.payload), status.completed_item_count

        payload, finished_before = asyncio.run(wait_through_restart())
        assert finished_before < len(ROWS)  # the restart really happened mid-batch
        assert payload["status"] == "complete"
        assert payload["completed"] == payload["total"] == len(ROWS)
        assert "Polling batch status failed, will poll again" in all_logs()

        status = hook.get_batch_status(*ECHO, batch_id)
        hook.close()
        assert [r.output_parameters["echo"] for r in status.results] == [r["text"] for r in ROWS]

        result = collect(task_context, batch_id, tmp_path / "out", service=ECHO)
    assert result["rows"] == status.total_item_count == len(ROWS)
    table = pd.read_parquet(tmp_path / "out" / "outputs.parquet")
    assert list(table["index"]) == list(range(len(ROWS)))
    assert list(table["echo"]) == [r["text"] for r in ROWS]  # each row once, in input order
    manifest = check_manifest(tmp_path / "out")
    assert sorted(f["index"] for f in manifest["files"]) == list(range(len(ROWS)))
