"""Runs batch executions on threads.

Threads, not processes: the per-row work of a typical scoring function is microseconds, so
pickling rows to worker processes would cost more than the work itself; services are
arbitrary callables (closures, fitted models, open resources) that need not be picklable; and
numpy releases the GIL in its heavy kernels. ``parallelCount`` is, as on the real server, the
number of threads that run one batch's rows.

Rows are read from the database in chunks and their results are written back in chunks, each
write also bumping the batch's ``completed`` counter, so batches of a million rows neither sit
in memory twice nor make status reads recount anything.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
import time
import uuid
from collections import deque
from pathlib import Path

from airflow_provider.server.db import Store
from airflow_provider.server.fault_points import NO_FAULTS, FaultPoints
from airflow_provider.server.invocation import failure_result, invoke
from airflow_provider.server.services import ServiceDefinition, ServiceRegistry
from airflow_provider.server.settings import ServerSettings

log = logging.getLogger(__name__)

FETCH_CHUNK = 1000
FLUSH_ROWS = 256
FLUSH_SECONDS = 0.1
#: How long the last results of a batch are tried to be saved before it is given up as failed.
SAVE_PATIENCE = 60.0


class _RowFeeder:
    """Hands out unfinished rows in index order, reading the database a chunk at a time."""

    def __init__(self, store: Store, batch_id: str) -> None:
        self._store = store
        self._batch_id = batch_id
        self._lock = threading.Lock()
        self._buffer: deque[tuple[int, str]] = deque()
        self._last = -1
        self._exhausted = False

    def next(self) -> tuple[int, str] | None:
        with self._lock:
            if not self._buffer and not self._exhausted:
                chunk = self._store.pending_rows(self._batch_id, self._last, FETCH_CHUNK)
                if chunk:
                    self._buffer.extend(chunk)
                    self._last = chunk[-1][0]
                else:
                    self._exhausted = True
            return self._buffer.popleft() if self._buffer else None


class BatchRun:
    """One batch being executed: a coordinator thread and up to ``parallelCount`` workers.

    :param executor: The owning executor.
    :param batch_id: The batch to run.
    :param resumed: The batch was running when the server last stopped; unfinished rows may
        have left partial files, which are removed before the row runs again.
    """

    def __init__(self, executor: Executor, batch_id: str, resumed: bool) -> None:
        self.batch_id = batch_id
        self.cancelled = False
        self.halt = threading.Event()
        self._executor = executor
        self._resumed = resumed
        self._pending: list[tuple[int, str]] = []
        self._pending_lock = threading.Lock()
        self._last_flush = time.monotonic()
        self.thread = threading.Thread(target=self._run, name=f"batch-{batch_id[:8]}", daemon=True)

    def _run(self) -> None:
        ex = self._executor
        try:
            if not self.halt.is_set():
                self._execute()
        except Exception as exc:
            log.exception("batch %s failed", self.batch_id)
            try:
                ex.store.set_state(self.batch_id, "Failed", f"Internal error: {exc}")
            except sqlite3.Error:  # the database cannot be written: resumed on restart
                log.exception("batch %s could not be marked Failed", self.batch_id)
        finally:
            ex.finished(self)

    def _fail(self, message: str) -> None:
        self._executor.store.set_state(self.batch_id, "Failed", message)

    def _execute(self) -> None:
        ex = self._executor
        batch = ex.store.get_batch(self.batch_id)
        if batch is None:
            return
        service = ex.registry.get(batch.service_name, batch.service_version)
        if service is None:
            self._fail(
                f"Service '{batch.service_name}' version '{batch.service_version}' "
                "is no longer registered."
            )
            return
        if batch.injected_failure:
            self._fail(batch.injected_failure)
            return
        try:
            service.load()
        except Exception as exc:
            self._fail(f"The service could not be loaded: {type(exc).__name__}: {exc}")
            return
        ex.store.set_state(self.batch_id, "InProgress")
        feeder = _RowFeeder(ex.store, self.batch_id)
        count = max(1, min(batch.parallel_count, batch.total - batch.completed))
        workers = [
            threading.Thread(
                target=self._work,
                args=(service, feeder),
                name=f"row-{self.batch_id[:8]}-{i}",
                daemon=True,
            )
            for i in range(count)
        ]
        started = []
        try:
            for worker in workers:
                worker.start()
                started.append(worker)
        except RuntimeError as exc:  # "can't start new thread": out of threads or memory
            log.error("batch %s: %s", self.batch_id, exc)
            if not started:
                raise
        for worker in started:
            # A finished row's result is saved within FLUSH_SECONDS even when no other row
            # finishes after it (slow rows): a status shows it, and a crash does not lose it.
            while worker.is_alive():
                worker.join(FLUSH_SECONDS)
                self._flush(force=False)
        self._save_the_rest()
        if self.halt.is_set():
            return
        final = ex.store.get_batch(self.batch_id)
        if final is None:
            return
        if final.completed < final.total:
            self._fail(f"{final.total - final.completed} rows could not be run.")
        else:
            ex.store.set_state(self.batch_id, "Complete")

    def _work(self, service: ServiceDefinition, feeder: _RowFeeder) -> None:
        faults = self._executor.faults
        while not self.halt.is_set():
            item = feeder.next()
            if item is None:
                return
            idx, text = item
            delay = faults.row_delay(service.name)
            if delay and self.halt.wait(delay):
                return
            row_dir = self._executor.row_dir(self.batch_id, idx)
            if self._resumed and row_dir.exists():
                shutil.rmtree(row_dir, ignore_errors=True)
            if faults.row_fails(service.name, idx, text):
                result = failure_result(f"Injected failure for row {idx}.")
            else:
                result = invoke(service, json.loads(text), row_dir, idx, self.batch_id)
                override = faults.row_outputs(service.name, idx)
                if override and result.get("success"):
                    result["outputParameters"] = {**result["outputParameters"], **override}
            self._record(idx, json.dumps(result, separators=(",", ":")))

    def _record(self, idx: int, text: str) -> None:
        with self._pending_lock:
            self._pending.append((idx, text))
        self._flush(force=False)

    def _flush(self, force: bool) -> None:
        """Save the finished rows' results when enough wait, or some have waited long enough
        (``force``: whatever waits).

        A save that fails (a full disk, for a moment) puts the results back, to be saved by
        the next flush: a row thread must not die of it, nor its finished rows be lost.

        :raises sqlite3.Error: with ``force``, the save failed (the results are kept).
        """
        with self._pending_lock:
            due = len(self._pending) >= FLUSH_ROWS or (
                time.monotonic() - self._last_flush >= FLUSH_SECONDS
            )
            if not self._pending or not (force or due):
                return
            chunk, self._pending = self._pending, []
            self._last_flush = time.monotonic()
        try:
            self._save(chunk)
        except sqlite3.Error as exc:
            with self._pending_lock:
                self._pending[:0] = chunk
            if force:
                raise
            log.warning("batch %s: %d results not saved yet: %s", self.batch_id, len(chunk), exc)

    def _save(self, chunk: list[tuple[int, str]]) -> None:
        """Save results; a row whose result the database cannot hold (larger than SQLite
        stores) is saved as a failed row saying so, as the API has rows fail one by one."""
        store = self._executor.store
        try:
            store.save_results(self.batch_id, chunk)
            return
        except sqlite3.DataError:
            pass
        for idx, text in chunk:
            try:
                store.save_results(self.batch_id, [(idx, text)])
            except sqlite3.DataError as exc:
                failed = failure_result(
                    f"The row's result ({len(text):,} characters) could not be stored: {exc}."
                )
                store.save_results(
                    self.batch_id, [(idx, json.dumps(failed, separators=(",", ":")))]
                )

    def _save_the_rest(self) -> None:
        """Save what is left once the rows are done, trying again for a while when the save
        fails (a disk full for a moment), so that the batch can still complete.

        :raises sqlite3.Error: the results could not be saved in :data:`SAVE_PATIENCE`
            seconds; they are lost, and the rows run again when the server restarts.
        """
        deadline = time.monotonic() + SAVE_PATIENCE
        while True:
            try:
                self._flush(force=True)
                return
            except sqlite3.Error as exc:
                if time.monotonic() >= deadline or self.halt.is_set():
                    raise
                log.warning("batch %s: saving results failed, trying again: %s", self.batch_id, exc)
                self.halt.wait(1.0)


class Executor:
    """Schedules batches: at most ``max_concurrent_batches`` run, the others wait in ``Ready``.

    :param store: The database.
    :param registry: The services.
    :param settings: Limits and directories.
    :param faults: The fault points (none at all unless fault hooks are enabled).
    """

    def __init__(
        self,
        store: Store,
        registry: ServiceRegistry,
        settings: ServerSettings,
        faults: FaultPoints = NO_FAULTS,
    ) -> None:
        self.store = store
        self.registry = registry
        self.faults = faults
        self._max_running = settings.max_concurrent_batches
        self._files_dir = settings.files_dir
        #: Every run not finished, waiting or running, by batch id.
        self._runs: dict[str, BatchRun] = {}
        #: Runs waiting for a slot, oldest first; a waiting batch holds no thread, so any
        #: number of them can wait.
        self._waiting: deque[BatchRun] = deque()
        self._running = 0
        self._lock = threading.Lock()
        self._stopping = False

    def row_dir(self, batch_id: str, idx: int) -> Path:
        """Folder of one row's output files (created only when the row writes a file)."""
        return self._files_dir / batch_id / str(idx)

    def batch_dir(self, batch_id: str) -> Path:
        """Folder of a batch's output files."""
        return self._files_dir / batch_id

    def start(self, batch_id: str, resumed: bool = False) -> None:
        """Mark a stored batch ``Ready`` and schedule it: it runs when fewer than
        ``max_concurrent_batches`` are running, in the order batches were started."""
        self.store.set_state(batch_id, "Ready")
        run = BatchRun(self, batch_id, resumed)
        with self._lock:
            if self._stopping:
                return
            self._runs[batch_id] = run
            self._waiting.append(run)
        self._dispatch()

    def _dispatch(self) -> None:
        """Start waiting runs while a slot is free.

        A run whose thread cannot start (the process is out of threads or memory) fails its
        batch with the reason, instead of leaving it ``Ready`` with nothing to run it.
        """
        while True:
            with self._lock:
                if self._stopping or not self._waiting or self._running >= self._max_running:
                    return
                run = self._waiting.popleft()
                self._running += 1
            try:
                run.thread.start()
            except RuntimeError as exc:
                log.error("batch %s could not start: %s", run.batch_id, exc)
                with self._lock:
                    self._running -= 1
                    self._runs.pop(run.batch_id, None)
                self.store.set_state(
                    run.batch_id, "Failed", f"The server could not start the batch: {exc}"
                )

    def resume_unfinished(self) -> list[str]:
        """Schedule every batch that was not finished when the server last stopped."""
        ids = self.store.unfinished_batch_ids()
        for batch_id in ids:
            self.start(batch_id, resumed=True)
        return ids

    def remove_orphaned_files(self) -> list[str]:
        """Delete the file folders of batches the database no longer holds; return their ids.

        A cancel deletes the batch's rows at once and its files only once its running rows
        are done: a server stopped in between keeps files nobody can list or fetch. Only
        folders named like a batch id are considered (not links). Runs before the server
        serves, so no batch is being created meanwhile; one process serves a data directory.
        """
        if not self._files_dir.is_dir():
            return []
        known = self.store.all_batch_ids()
        removed = []
        for folder in self._files_dir.iterdir():
            if folder.name in known or not _is_batch_id(folder.name):
                continue
            if folder.is_symlink() or not folder.is_dir():
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
        return sorted(removed)

    def cancel(self, batch_id: str) -> None:
        """Stop rows not yet started and delete the execution and its files.

        The database rows go at once (a later GET is 404); the files go once the rows that
        were already running have finished, so none is written into a deleted folder.
        """
        self.store.delete_batch(batch_id)
        with self._lock:
            run = self._runs.get(batch_id)
            if run is not None and run in self._waiting:
                self._waiting.remove(run)  # never started: nothing of it is running
                self._runs.pop(batch_id)
                run = None
            if run is not None:
                run.cancelled = True
                run.halt.set()
        if run is None:
            shutil.rmtree(self.batch_dir(batch_id), ignore_errors=True)

    def finished(self, run: BatchRun) -> None:
        """Called by a run when its threads are done."""
        with self._lock:
            self._runs.pop(run.batch_id, None)
            self._running -= 1
            cancelled = run.cancelled
        if cancelled:
            shutil.rmtree(self.batch_dir(run.batch_id), ignore_errors=True)
        self._dispatch()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop taking rows, let running rows finish, and save their results.

        Batches stay ``InProgress`` in the database and are resumed on the next start.
        """
        with self._lock:
            self._stopping = True
            self._waiting.clear()  # still Ready in the database: they run on the next start
            runs = list(self._runs.values())
        for run in runs:
            run.halt.set()
        runs = [run for run in runs if run.thread.ident is not None]  # started: join them
        deadline = time.monotonic() + timeout
        for run in runs:
            run.thread.join(max(0.0, deadline - time.monotonic()))


def _is_batch_id(name: str) -> bool:
    """Whether ``name`` is an id as this server makes them (a UUID in its canonical form)."""
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False
