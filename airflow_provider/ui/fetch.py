"""What the batch status page shows, fetched from the server with the task's connection.

Two requests through the hook (so the connection's retries, timeouts, TLS settings and token
handling apply): the batch's state and counts (``get_batch_progress``, which stops reading
before the rows), then, once some rows are done, the status of the first :data:`ROW_LIMIT`
rows, read as they arrive (``read_batch_results``) and dropped after that: a page for a batch
of two million rows holds a thousand rows' status, not the answer.

Every message that reaches the page has the connection's secrets (its password and every
extra the form marks as a password) replaced by ``***``: a hook message never holds one, but
a hostile server can put anything in the error it answers, the password it was sent included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airflow_provider.api.errors import (
    MrsDeployConfigurationError,
    MrsDeployError,
    MrsDeployNotFoundError,
)
from airflow_provider.api.models import ExecutionResult
from airflow_provider.api.state import MrsDeployBatchState
from airflow_provider.provider_info import CONN_FIELDS

#: Rows whose status the page lists (the counts cover every row).
ROW_LIMIT = 1000
#: Characters of a row's error message shown.
ERROR_CHARS = 500
#: The connection type the page accepts.
CONN_TYPE = "mrsdeploy"


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
    #: True when the batch has more rows than :data:`ROW_LIMIT` and the list stops there.
    rows_cut: bool = False

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
    """Raised from the row callback once :data:`ROW_LIMIT` rows are held: stops the read."""


def secrets_of(conn: Any) -> list[str]:
    """The connection's values that must never be shown: its password and every extra the
    form declares as a password (``format: password`` in ``CONN_FIELDS``).

    :param conn: an Airflow connection.
    """
    found = [conn.password] if conn.password else []
    extras = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else {}
    for name, definition in CONN_FIELDS.items():
        if definition.get("schema", {}).get("format") == "password" and extras.get(name):
            found.append(str(extras[name]))
    return found


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***`` (longest first, so a secret holding
    another is removed whole).

    :param text: a message for the page.
    :param secrets: values that must not be shown.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _row(result: ExecutionResult, index: int) -> RowStatus:
    error = result.error_message
    if error is not None and len(error) > ERROR_CHARS:
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


def fetch_batch(
    connection_id: str,
    service_name: str,
    service_version: str,
    batch_id: str,
    row_limit: int = ROW_LIMIT,
) -> BatchView:
    """The batch's state, counts and first rows, or :class:`PageError`.

    The values must have been checked (:func:`airflow_provider.ui.urls.page_problems`).

    :param connection_id: an ``mrsdeploy`` connection.
    :param service_name: the service's name.
    :param service_version: the service's version.
    :param batch_id: the batch execution id.
    :param row_limit: rows whose status is listed.
    """
    from airflow_provider.hooks import MrsDeployHook

    conn = _connection(connection_id)
    secrets = secrets_of(conn)
    hook = MrsDeployHook(connection_id)
    rows: list[RowStatus] = []
    cut = False

    def take(results: list[ExecutionResult]) -> None:
        nonlocal cut
        for result in results:
            if len(rows) >= row_limit:
                cut = True
                raise _Enough
            rows.append(_row(result, len(rows)))

    try:
        progress = hook.get_batch_progress(service_name, service_version, batch_id)
        if progress.completed_item_count > 0 and progress.state.is_terminal:
            with contextlib.suppress(_Enough):
                hook.read_batch_results(service_name, service_version, batch_id, take)
    except MrsDeployNotFoundError as err:
        raise PageError(404, "Batch not found", redact(str(err), secrets)) from None
    except MrsDeployConfigurationError as err:
        raise PageError(400, "Cannot read the batch", redact(str(err), secrets)) from None
    except MrsDeployError as err:
        raise PageError(502, "Cannot read the batch", redact(str(err), secrets)) from None
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
        rows=tuple(rows),
        rows_cut=cut,
    )
