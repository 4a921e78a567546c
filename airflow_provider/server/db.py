"""SQLite store (WAL mode) for users, tokens, batches and per-row results.

One connection shared by every thread behind a lock: statements are short, and a single
writer is what SQLite allows anyway. Row results are written in chunks by the executor, and
each batch keeps its own ``completed`` counter so status reads never recount rows. Finished
batches are also kept in memory (they change only by being deleted), so the many file reads of
a collect neither query the database nor queue behind the lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

INSERT_CHUNK = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    access_hash TEXT PRIMARY KEY,
    refresh_hash TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    access_expires REAL NOT NULL,
    refresh_expires REAL NOT NULL,
    chain_started REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    service_name TEXT NOT NULL,
    service_version TEXT NOT NULL,
    owner TEXT NOT NULL,
    state TEXT NOT NULL,
    parallel_count INTEGER NOT NULL,
    total INTEGER NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    error_message TEXT,
    injected_failure TEXT
);
CREATE INDEX IF NOT EXISTS batches_by_owner ON batches (owner, service_name, service_version);
CREATE TABLE IF NOT EXISTS rows (
    batch_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    inputs TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    PRIMARY KEY (batch_id, idx)
) WITHOUT ROWID;
"""

UNFINISHED_STATES = ("Pending", "Ready", "InProgress")
TERMINAL_STATES = ("Complete", "Failed")
#: Finished batches kept in memory (the cache starts over when it is full).
MAX_FINISHED_CACHED = 10_000


@dataclass(frozen=True)
class BatchRecord:
    """One batch execution as stored."""

    id: str
    service_name: str
    service_version: str
    owner: str
    state: str
    parallel_count: int
    total: int
    completed: int
    created_at: float
    error_message: str | None
    injected_failure: str | None


@dataclass(frozen=True)
class TokenRecord:
    """A stored access/refresh pair (hashes only)."""

    access_hash: str
    refresh_hash: str
    username: str
    access_expires: float
    refresh_expires: float
    chain_started: float


_BATCH_COLUMNS = (
    "id, service_name, service_version, owner, state, parallel_count, total, completed, "
    "created_at, error_message, injected_failure"
)


class Store:
    """Thread-safe access to the server's SQLite database.

    :param path: Database file; its directory is created when missing.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        # Batches in a terminal state never change until deleted: file and status reads of a
        # finished batch (thousands per collect) are answered from here, without the lock.
        self._finished: dict[str, BatchRecord] = {}

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                # SQLite has rolled back already after some errors (a full disk): a ROLLBACK
                # then fails, and its error would hide the real one.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- users -------------------------------------------------------------------------------

    def upsert_user(self, username: str, password_hash: str) -> None:
        """Create the user or replace its password."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO users (username, password_hash) VALUES (?, ?) "
                "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash",
                (username, password_hash),
            )

    def password_hash(self, username: str) -> str | None:
        """The stored password hash of ``username``, or ``None`` when unknown."""
        rows = self._query("SELECT password_hash FROM users WHERE username = ?", (username,))
        return str(rows[0][0]) if rows else None

    # -- tokens ------------------------------------------------------------------------------

    def insert_tokens(self, record: TokenRecord) -> None:
        """Store a new token pair."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.access_hash,
                    record.refresh_hash,
                    record.username,
                    record.access_expires,
                    record.refresh_expires,
                    record.chain_started,
                ),
            )

    def access_owner(self, access_hash: str, now: float) -> tuple[str, float] | None:
        """Owner and expiry of an unexpired access token, else ``None``."""
        rows = self._query(
            "SELECT username, access_expires FROM tokens WHERE access_hash = ? "
            "AND access_expires > ?",
            (access_hash, now),
        )
        return (str(rows[0][0]), float(rows[0][1])) if rows else None  # type: ignore[arg-type]

    def take_refresh(self, refresh_hash: str) -> TokenRecord | None:
        """Delete the pair owning ``refresh_hash`` and return it (rotation consumes the pair)."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT access_hash, refresh_hash, username, access_expires, refresh_expires, "
                "chain_started FROM tokens WHERE refresh_hash = ?",
                (refresh_hash,),
            ).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM tokens WHERE refresh_hash = ?", (refresh_hash,))
            return TokenRecord(*row)

    def revoke_refresh(self, refresh_hash: str, username: str) -> bool:
        """Delete the pair owning ``refresh_hash`` if it belongs to ``username``."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM tokens WHERE refresh_hash = ? AND username = ?",
                (refresh_hash, username),
            )
            return cursor.rowcount > 0

    def purge_tokens(self, now: float) -> int:
        """Forget pairs whose refresh token has expired; returns how many."""
        with self._transaction() as conn:
            cursor = conn.execute("DELETE FROM tokens WHERE refresh_expires <= ?", (now,))
            return max(cursor.rowcount, 0)

    # -- batches -----------------------------------------------------------------------------

    def create_batch(self, batch: BatchRecord, inputs: Iterable[str]) -> None:
        """Insert a batch and its rows (JSON-encoded inputs, in order) in one transaction."""
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    batch.id,
                    batch.service_name,
                    batch.service_version,
                    batch.owner,
                    batch.state,
                    batch.parallel_count,
                    batch.total,
                    batch.completed,
                    batch.created_at,
                    batch.error_message,
                    batch.injected_failure,
                ),
            )
            numbered = enumerate(inputs)
            while chunk := list(islice(numbered, INSERT_CHUNK)):
                conn.executemany(
                    "INSERT INTO rows (batch_id, idx, inputs) VALUES (?, ?, ?)",
                    [(batch.id, idx, text) for idx, text in chunk],
                )

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        """One batch, or ``None``."""
        finished = self._finished.get(batch_id)
        if finished is not None:
            return finished
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,)
            ).fetchall()
            if not rows:
                return None
            batch = BatchRecord(*rows[0])
            if batch.state in TERMINAL_STATES:
                if len(self._finished) >= MAX_FINISHED_CACHED:
                    self._finished.clear()
                self._finished[batch_id] = batch
            return batch

    def finished_batch(self, batch_id: str) -> BatchRecord | None:
        """The batch if it is finished and already in memory, else ``None``; never queries.

        Safe on the event loop: ``None`` only means "ask :meth:`get_batch`", which also puts a
        finished batch in memory for the next call.
        """
        return self._finished.get(batch_id)

    def list_batch_ids(self, owner: str, name: str, version: str) -> list[str]:
        """Ids of the owner's batches of one service version, oldest first."""
        rows = self._query(
            "SELECT id FROM batches WHERE owner = ? AND service_name = ? AND service_version = ? "
            "ORDER BY created_at, id",
            (owner, name, version),
        )
        return [str(row[0]) for row in rows]

    def all_batch_ids(self) -> set[str]:
        """Every stored batch's id, whoever owns it."""
        return {str(row[0]) for row in self._query("SELECT id FROM batches")}

    def unfinished_batch_ids(self) -> list[str]:
        """Batches that have not reached a terminal state, oldest first."""
        marks = ", ".join("?" for _ in UNFINISHED_STATES)
        rows = self._query(
            f"SELECT id FROM batches WHERE state IN ({marks}) ORDER BY created_at, id",
            UNFINISHED_STATES,
        )
        return [str(row[0]) for row in rows]

    def set_state(self, batch_id: str, state: str, error_message: str | None = None) -> None:
        """Move a batch to ``state``."""
        with self._transaction() as conn:
            self._finished.pop(batch_id, None)
            conn.execute(
                "UPDATE batches SET state = ?, error_message = COALESCE(?, error_message) "
                "WHERE id = ?",
                (state, error_message, batch_id),
            )

    def pending_rows(self, batch_id: str, after: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` unfinished rows with an index above ``after``, in order."""
        rows = self._query(
            "SELECT idx, inputs FROM rows WHERE batch_id = ? AND idx > ? AND done = 0 "
            "ORDER BY idx LIMIT ?",
            (batch_id, after, limit),
        )
        return [(int(idx), str(text)) for idx, text in rows]  # type: ignore[call-overload]

    def save_results(self, batch_id: str, results: list[tuple[int, str]]) -> int:
        """Record finished rows and bump the batch counter; returns how many were new."""
        if not results:
            return 0
        with self._transaction() as conn:
            self._finished.pop(batch_id, None)
            cursor = conn.executemany(
                "UPDATE rows SET done = 1, result = ? WHERE batch_id = ? AND idx = ? AND done = 0",
                [(text, batch_id, idx) for idx, text in results],
            )
            changed = max(cursor.rowcount, 0)
            if changed:
                conn.execute(
                    "UPDATE batches SET completed = completed + ? WHERE id = ?",
                    (changed, batch_id),
                )
            return changed

    def finished_results(self, batch_id: str) -> list[str]:
        """JSON texts of the finished rows, in input order."""
        rows = self._query(
            "SELECT result FROM rows WHERE batch_id = ? AND done = 1 ORDER BY idx", (batch_id,)
        )
        return [str(row[0]) for row in rows]

    def row_done(self, batch_id: str, idx: int) -> bool | None:
        """Whether row ``idx`` finished; ``None`` when the batch has no such row."""
        finished = self._finished.get(batch_id)
        if finished is not None and finished.state == "Complete" and 0 <= idx < finished.total:
            return True  # a batch is Complete only once every row is
        rows = self._query("SELECT done FROM rows WHERE batch_id = ? AND idx = ?", (batch_id, idx))
        return bool(rows[0][0]) if rows else None

    def delete_batch(self, batch_id: str) -> bool:
        """Delete a batch and its rows; returns whether it existed."""
        with self._transaction() as conn:
            self._finished.pop(batch_id, None)
            conn.execute("DELETE FROM rows WHERE batch_id = ?", (batch_id,))
            cursor = conn.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
            return cursor.rowcount > 0
