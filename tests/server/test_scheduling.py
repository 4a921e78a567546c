"""How the reference server schedules batches: waiting batches hold no thread, a batch that
cannot be started fails with the reason instead of staying ``Ready``, and a finished row's
result is saved while slower rows of its batch still run."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.server.process import ReferenceServer
from tests.conftest import ServerFactory
from tests.support.api import Api

ECHO = ("echoService", "v1.0.0")


def _threads(server: ReferenceServer) -> int:
    """The threads of the server's process."""
    process = server._process
    assert process is not None
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads")))


def _rows(count: int) -> list[dict[str, Any]]:
    return [{"text": f"row {i}", "n": i} for i in range(count)]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_batches_waiting_for_a_slot_hold_no_thread_and_all_run(
    server_factory: ServerFactory,
) -> None:
    """Each waiting batch kept a thread polling for a slot: enough of them exhausted the
    process's threads, and the next batch was stored but never started (``Ready`` for ever)."""
    server = server_factory("--enable-fault-hooks", "--max-concurrent-batches", "1")
    api = Api(server)
    with server.faults(rowDelaySeconds=1.0, service=ECHO[0]):
        running = api.start_batch(_rows(1), *ECHO)
        api.wait(running, *ECHO, until=lambda s: s["state"] == "InProgress", timeout=30)
        before = _threads(server)
        waiting = [api.start_batch(_rows(1), *ECHO) for _ in range(30)]
        assert _threads(server) < before + 10  # was one more per waiting batch
        assert {api.status(b, *ECHO)["state"] for b in waiting} == {"Ready"}
        cancelled = waiting.pop(5)
        assert api.delete(f"/api/{ECHO[0]}/{ECHO[1]}/batch/{cancelled}").status_code == 200
    for batch_id in [running, *waiting]:
        status = api.wait(batch_id, *ECHO, timeout=60)
        assert status["state"] == "Complete", status
    assert api.get(f"/api/{ECHO[0]}/{ECHO[1]}/batch/{cancelled}").status_code == 404


def test_a_finished_row_is_saved_while_the_other_rows_still_run(
    server_factory: ServerFactory,
) -> None:
    """Results were saved only when another row finished 0.1 s after the last save: of two
    rows finishing together, the second waited for the next row to end (here 3 s later), so
    the status under-counted and a crash in between lost it."""
    server = server_factory("--enable-fault-hooks")
    api = Api(server)
    with server.faults(rowDelaySeconds=3.0, service=ECHO[0]):
        batch_id = api.start_batch(_rows(4), *ECHO, parallel=2)
        first = api.wait(
            batch_id, *ECHO, until=lambda s: s["completedItemCount"] >= 1, timeout=30, partial=True
        )
        assert first["state"] == "InProgress"
        # Both rows of the first pair ended within moments of each other; the next pair runs
        # for 3 s more.
        both = api.wait(
            batch_id, *ECHO, until=lambda s: s["completedItemCount"] >= 2, timeout=1.5, partial=True
        )
        assert both["state"] == "InProgress" and both["completedItemCount"] == 2
    assert api.wait(batch_id, *ECHO, timeout=30)["state"] == "Complete"


def test_a_batch_whose_thread_cannot_start_fails_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process out of threads (a fault no real server produces on demand, so the thread's
    start is made to fail): the batch was left ``Ready`` with nothing to run it, and shutting
    down then failed joining a thread that never started."""
    from airflow_provider.server.app import _build_state
    from airflow_provider.server.settings import ServerSettings

    state = _build_state(ServerSettings(data_dir=tmp_path, admin_password="pw"))
    original = threading.Thread.start

    def refuse(thread: threading.Thread) -> None:
        if thread.name.startswith("batch-"):
            raise RuntimeError("can't start new thread")
        original(thread)

    monkeypatch.setattr(threading.Thread, "start", refuse)
    record = _started_batch(state, ['{"text": "a", "n": 1}'], parallel=1)
    batch = state.store.get_batch(record)
    assert batch is not None and batch.state == "Failed"
    assert batch.error_message == "The server could not start the batch: can't start new thread"
    monkeypatch.setattr(threading.Thread, "start", original)
    state.executor.shutdown(timeout=5)  # nothing to join, no error
    state.store.close()


def _started_batch(state: Any, texts: list[str], parallel: int) -> str:
    """A batch of echo rows created and started as the API does it; its id."""
    from airflow_provider.server.app import _create_batch

    body = ("[" + ",".join(texts) + "]").encode()
    return _create_batch(state, state.registry.get(*ECHO), "admin", body, parallel)


def _run_stored(state: Any, texts: list[str], timeout: float = 30) -> Any:
    """Create and start a batch of echo rows, wait until it ends; its record."""
    batch_id = _started_batch(state, texts, parallel=4)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = state.store.get_batch(batch_id)
        if batch is not None and batch.state in ("Complete", "Failed"):
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} did not end: {state.store.get_batch(batch_id)}")


@pytest.fixture
def state(tmp_path: Path) -> Any:
    from airflow_provider.server.app import _build_state
    from airflow_provider.server.settings import ServerSettings

    built = _build_state(ServerSettings(data_dir=tmp_path, admin_password="pw"))
    yield built
    built.executor.shutdown(timeout=5)
    built.store.close()


def test_a_row_result_too_large_to_store_fails_that_row_only(state: Any) -> None:
    """A result larger than SQLite stores failed the save of every result queued with it, and
    the batch as a whole (its other rows went on running, counted on a Failed batch)."""
    import sqlite3

    state.store._conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 20_000)  # 1e9 by default
    texts = ['{"text": "x", "n": 1}'] * 6 + ['{"text": "' + "y" * 100 + '", "n": 300}']
    batch = _run_stored(state, texts)
    assert (batch.state, batch.completed) == ("Complete", 7)
    results = [json.loads(text) for text in state.store.finished_results(batch.id)]
    assert [r["success"] for r in results] == [True] * 6 + [False]
    assert "could not be stored" in results[6]["errorMessage"]


def test_results_whose_save_fails_for_a_moment_are_saved_later(
    state: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk full for a moment (a fault no test can cause on any machine on demand): the
    results being saved were dropped, the batch stayed InProgress with nothing running it."""
    import sqlite3

    original = state.store.save_results
    failures = {"left": 5}

    def full_for_a_moment(batch_id: str, results: list[tuple[int, str]]) -> int:
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return int(original(batch_id, results))

    monkeypatch.setattr(state.store, "save_results", full_for_a_moment)
    batch = _run_stored(state, [json.dumps({"text": "a", "n": i}) for i in range(40)])
    assert (batch.state, batch.completed, batch.total) == ("Complete", 40, 40)
    assert failures["left"] == 0
    results = [json.loads(text) for text in state.store.finished_results(batch.id)]
    assert [r["outputParameters"]["length"] for r in results] == [
        len(" ".join(["a"] * i)) for i in range(40)
    ]
