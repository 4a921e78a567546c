"""What the batch status page shows, fetched from the server with the task's connection.

Two requests through the hook (so the connection's TLS settings, proxy and token handling
apply): the batch's state and counts (``get_batch_progress``, which stops reading before the
rows), then, once some rows are done, the status of the first :data:`ROW_LIMIT` rows, read as
they arrive (``read_batch_results``) and dropped after that: a page for a batch of two million
rows holds a thousand rows' status, not the answer.

A reader waits for the page, so the fetch has a short budget of its own instead of the
connection's (made for tasks, which can wait a minute per request and retry five times): no
retries, and every call (login, state, rows) ends within :data:`PAGE_SECONDS` of the start
(:func:`~airflow_provider.waiting.deadlines.calls_end_by`). Rows still arriving then are left
out, and the page says so.

Every message that reaches the page, the rows' errors included, has the connection's secrets
replaced by ``***`` (:mod:`airflow_provider.ui.redaction`): a hook message never holds one, but
a server can put anything in the error it answers, the password it was sent included.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider.api.errors import (
    MrsDeployConfigurationError,
    MrsDeployError,
    MrsDeployNotFoundError,
)
from airflow_provider.api.models import ExecutionResult
from airflow_provider.api.state import MrsDeployBatchState
from airflow_provider.ui.redaction import redact, secrets_of
from airflow_provider.waiting.deadlines import calls_end_by, time_left

if TYPE_CHECKING:
    from airflow_provider.hooks import MrsDeployHook

#: Rows whose status the page lists (the counts cover every row).
ROW_LIMIT = 1000
#: Characters of a row's error message shown.
ERROR_CHARS = 500
#: The connection type the page accepts.
CONN_TYPE = "mrsdeploy"
#: Seconds all the page's calls to the server may take together: a reader waits for the page,
#: and a server that has not answered in this time will not be helped by a longer wait.
PAGE_SECONDS = 10.0


@dataclass(frozen=True)
class RowStatus:
    """One row's outcome: its 0-based index in the batch, success, and error message."""

    index: int
    success: bool
    error: str | None = None


@dataclass(frozen=True)
class BatchView:
    """Everything the page shows about one batch."""

    connection_id: str
    service_name: str
    service_version: str
    batch_id: str
    state: MrsDeployBatchState
    completed: int
    total: int
    rows: tuple[RowStatus, ...] = ()
    #: True when the list stops before the batch's last row (see ``rows_late``).
    rows_cut: bool = False
    #: True when the list stops because the rows came too slowly (:data:`PAGE_SECONDS`), not
    #: because :data:`ROW_LIMIT` rows were listed.
    rows_late: bool = False

    @property
    def succeeded(self) -> int:
        """Rows listed that succeeded."""
        return sum(1 for row in self.rows if row.success)

    @property
    def failed(self) -> int:
        """Rows listed that failed."""
        return sum(1 for row in self.rows if not row.success)


class PageError(Exception):
    """Why the page cannot show the batch: an HTTP status, a title and a message (secrets
    already removed), and the reason for each refused value of the address.

    :param status: the HTTP status of the page.
    :param title: the page's heading.
    :param message: what went wrong and what to do.
    :param details: ``{value name: why it is refused}``.
    """

    def __init__(
        self, status: int, title: str, message: str, details: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {title}: {message}")
        self.status = status
        self.title = title
        self.message = message
        self.details = dict(details or {})


class _Enough(Exception):
    """Raised from the row callback to stop reading the rows: the list is full or late."""


class _RowList:
    """The rows' status as the answer arrives, until :data:`ROW_LIMIT` rows or the deadline.

    :param limit: rows listed at most.
    :param secrets: values removed from each row's error.
    """

    def __init__(self, limit: int, secrets: list[str]) -> None:
        self.limit = limit
        self.secrets = secrets
        self.rows: list[RowStatus] = []
        self.cut = False
        self.late = False

    def take(self, results: list[ExecutionResult]) -> None:
        """Keep ``results``; raise :class:`_Enough` once the list is full or time is up."""
        for result in results:
            if len(self.rows) >= self.limit:
                self.cut = True
                raise _Enough
            if _out_of_time():
                self.cut = self.late = True
                raise _Enough
            self.rows.append(_row(result, len(self.rows), self.secrets))


def _out_of_time() -> bool:
    """Whether the deadline of the calls in progress has passed."""
    left = time_left()
    return left is not None and left <= 0


def _row(result: ExecutionResult, index: int, secrets: list[str]) -> RowStatus:
    """A row's status, its error cleared of secrets before it is cut: a cut made first could
    split a secret and leave its start, which no replacement would then recognise."""
    error = result.error_message
    if error is not None:
        error = redact(error, secrets)
        if len(error) > ERROR_CHARS:
            error = error[:ERROR_CHARS] + "..."
    return RowStatus(index=index, success=result.success, error=error)


def _connection(connection_id: str) -> Any:
    """The connection, checked to be an ``mrsdeploy`` one."""
    from airflow_provider.compat import AirflowNotFoundException
    from airflow_provider.hooks import MrsDeployHook

    try:
        conn = MrsDeployHook.get_connection(connection_id)
    except AirflowNotFoundException:
        raise PageError(
            404, "Unknown connection", f"There is no connection {connection_id!r}."
        ) from None
    if conn.conn_type != CONN_TYPE:
        raise PageError(
            400,
            "Not an mrsdeploy connection",
            f"Connection {connection_id!r} is of type {conn.conn_type!r}; this page reads "
            f"batches only through {CONN_TYPE!r} connections.",
        )
    return conn


def _page_hook(connection_id: str, conn: Any) -> tuple[MrsDeployHook, list[str]]:
    """A hook for the page (no retries, requests of at most :data:`PAGE_SECONDS` or the
    connection's shorter ``timeout``) and every secret of the connection's settings.

    :raises MrsDeployConfigurationError: when the connection cannot be used.
    """
    from airflow_provider.hooks import MrsDeployHook
    from airflow_provider.hooks.settings import settings_from_connection

    settings = settings_from_connection(conn)
    hook = MrsDeployHook(connection_id, timeout=min(settings.timeout, PAGE_SECONDS), max_retries=0)
    return hook, [secret for secret, _name in settings.secrets]


def _page_error(err: MrsDeployError, secrets: list[str]) -> PageError:
    """The page for a failed fetch, the message cleared of secrets."""
    message = redact(str(err), secrets)
    if isinstance(err, MrsDeployNotFoundError):
        return PageError(404, "Batch not found", message)
    if isinstance(err, MrsDeployConfigurationError):
        return PageError(400, "Cannot read the batch", message)
    return PageError(502, "Cannot read the batch", message)


def fetch_batch(
    connection_id: str,
    service_name: str,
    service_version: str,
    batch_id: str,
    row_limit: int = ROW_LIMIT,
) -> BatchView:
    """The batch's state, counts and first rows, or :class:`PageError`, within
    :data:`PAGE_SECONDS` (a blocking call: the page runs it in a thread of its own).

    The values must have been checked (:func:`airflow_provider.ui.urls.page_problems`).

    :param connection_id: an ``mrsdeploy`` connection.
    :param service_name: the service's name.
    :param service_version: the service's version.
    :param batch_id: the batch execution id.
    :param row_limit: rows whose status is listed.
    """
    with calls_end_by(time.time() + PAGE_SECONDS):
        conn = _connection(connection_id)
        secrets = secrets_of(conn)
        try:
            hook, more_secrets = _page_hook(connection_id, conn)
        except MrsDeployError as err:
            raise _page_error(err, secrets) from None
        secrets += more_secrets
        listed = _RowList(row_limit, secrets)
        try:
            progress = hook.get_batch_progress(service_name, service_version, batch_id)
            if progress.completed_item_count > 0 and progress.state.is_terminal:
                with contextlib.suppress(_Enough):
                    hook.read_batch_results(service_name, service_version, batch_id, listed.take)
        except MrsDeployError as err:
            raise _page_error(err, secrets) from None
        finally:
            hook.close()
    return BatchView(
        connection_id=connection_id,
        service_name=service_name,
        service_version=service_version,
        batch_id=batch_id,
        state=progress.state,
        completed=progress.completed_item_count,
        total=progress.total_item_count,
        rows=tuple(listed.rows),
        rows_cut=listed.cut,
        rows_late=listed.late,
    )
