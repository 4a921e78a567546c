"""Persistence: finished rows survive a restart and running batches resume."""

from __future__ import annotations

import pytest

from airflow_provider.server.db import Store
from tests.conftest import ServerFactory
from tests.support.api import Api

ECHO = "/api/echoService/v1.0.0"


@pytest.mark.parametrize("graceful", [True, False], ids=["sigterm", "sigkill"])
def test_batch_in_flight_resumes_after_restart(
    server_factory: ServerFactory, graceful: bool
) -> None:
    server = server_factory("--enable-fault-hooks")
    api = Api(server)
    done = api.start_batch([{"text": "done", "n": 1}], service="echoService")
    api.wait(done, service="echoService")
    records = [{"text": f"row{i}", "n": 1} for i in range(12)]
    server.set_faults(rowDelaySeconds=0.25)
    batch_id = api.start_batch(records, service="echoService", parallel=2)
    before = api.wait(batch_id, service="echoService", until=lambda s: s["completedItemCount"] >= 3)
    assert before["state"] == "InProgress"
    kept = api.status(batch_id, service="echoService", partial=True)["batchExecutionResults"]

    server.restart(graceful=graceful)
    api = Api(server)  # a new token proves users survived; the old one is checked below

    status = api.wait(batch_id, service="echoService")
    assert status["state"] == "Complete"
    assert status["completedItemCount"] == status["totalItemCount"] == 12
    results = status["batchExecutionResults"]
    assert [r["outputParameters"]["echo"] for r in results] == [f"row{i}" for i in range(12)]
    assert all(r["success"] for r in results)
    if graceful:  # rows saved before the stop are still there
        assert all(result in results for result in kept)
    for index in range(12):
        names = api.get(f"{ECHO}/batch/{batch_id}/{index}/files").json()
        assert names == ["echo.txt"]
        body = api.get(f"{ECHO}/batch/{batch_id}/{index}/files/echo.txt").content
        assert body == f"row{index}".encode()
    assert api.get("/_faults").json()["rowDelaySeconds"] == 0.0
    assert api.status(done, service="echoService")["state"] == "Complete"
    assert api.get(f"{ECHO}/batch").json() == [done, batch_id]


def test_tokens_survive_a_restart(server_factory: ServerFactory) -> None:
    server = server_factory()
    api = Api(server)
    server.restart()
    assert api.get("/services").status_code == 200


def test_files_of_a_batch_cancelled_just_before_a_crash_go_at_the_next_start(
    server_factory: ServerFactory,
) -> None:
    """A cancel deletes the batch at once and its files once its running rows are done: a crash
    in between left files that no call could list, fetch or delete. That state is made here by
    deleting the batch from the stopped server's database, as the cancel's first step does."""
    server = server_factory()
    api = Api(server)
    kept, cancelled = (
        api.start_batch([{"text": text, "n": 1}], service="echoService")
        for text in ("kept", "cancelled")
    )
    for batch_id in (kept, cancelled):
        api.wait(batch_id, service="echoService")
    server.kill()
    store = Store(server.data_dir / "server.db")
    try:
        assert store.delete_batch(cancelled)
    finally:
        store.close()
    files = server.data_dir / "files"
    assert (files / cancelled / "0" / "echo.txt").is_file()
    (files / "notes").mkdir()  # not a batch: left alone
    elsewhere = server.data_dir / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    link = files / "00000000-0000-4000-8000-000000000000"
    link.symlink_to(elsewhere, target_is_directory=True)  # named like a batch: a link, kept

    server.start()
    api = Api(server)

    assert not (files / cancelled).exists()
    assert (files / "notes").is_dir()
    assert link.is_symlink() and (elsewhere / "keep.txt").read_text() == "mine"
    assert api.get(f"{ECHO}/batch").json() == [kept]
    assert api.get(f"{ECHO}/batch/{kept}/0/files/echo.txt").content == b"kept"
