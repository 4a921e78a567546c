"""The batch status page: a small FastAPI app Airflow's API server mounts at ``/mrsdeploy``.

Signing in is Airflow's: the route depends on Airflow's own ``requires_access_connection``
check, which reads the user from the API server's session cookie (or a bearer token) and asks
the configured auth manager whether that user may read the connection named in the address.
Nobody signed in gets 401, a user without that right 403, before any value is looked up or
any request is sent. The batch is then fetched by the API server with that connection, so the
browser never holds a token of the server, and the connection's secrets never reach the page.

The route is async and never runs in the thread pool Airflow's own sync routes share: the
blocking fetch runs in the page's own few threads (:mod:`airflow_provider.ui.bounded`), at most
:data:`CONCURRENT_FETCHES` at once, each within :data:`~airflow_provider.ui.fetch.PAGE_SECONDS`.
A page asked for while all are busy is answered 503 at once, with ``Retry-After``. However
many pages are asked for, and however slow the server, Airflow's API keeps answering.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from airflow_provider.ui.bounded import BoundedRunner
from airflow_provider.ui.fetch import PAGE_SECONDS, BatchView, PageError, fetch_batch
from airflow_provider.ui.render import refused_values_message, render_batch, render_error
from airflow_provider.ui.urls import BATCH_ROUTE, page_problems

#: Sent with every page: no script, no outside resource, no framing by other sites, no
#: caching of a page that shows batch data, and no address leaked to linked sites.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; "
        "base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

#: Page fetches that may run at once in one API server process. A page is read by people, a
#: few at a time; four lets them load pages of different servers side by side while holding
#: few threads and connections, however many pages are asked for of a server that hangs.
CONCURRENT_FETCHES = 4
#: Seconds the page waits for its fetch past :data:`PAGE_SECONDS` (a stalled read of rows
#: may end a little after the deadline) before it answers 504 without it.
ANSWER_GRACE = 2.0
#: ``Retry-After`` of the 503 page: a busy fetch has ended by then.
RETRY_AFTER_SECONDS = round(PAGE_SECONDS)

_fetches = BoundedRunner(CONCURRENT_FETCHES, "mrsdeploy-page")


def _page(status: int, html: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def _error_page(error: PageError) -> HTMLResponse:
    return _page(error.status, render_error(error))


def _busy_page() -> HTMLResponse:
    """503: every fetch slot is taken (by pages of servers that are slow to answer)."""
    error = PageError(
        503,
        "Too many batch pages at once",
        f"{CONCURRENT_FETCHES} batch pages are being fetched already, each waiting up to "
        f"{PAGE_SECONDS:g} seconds for its server. Try again in {RETRY_AFTER_SECONDS} seconds.",
    )
    return _page(error.status, render_error(error), {"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _fetch(
    connection_id: str, service_name: str, service_version: str, batch_id: str
) -> BatchView | HTMLResponse:
    """The batch, fetched in the page's own threads; or the page saying why not."""
    future = _fetches.try_submit(
        fetch_batch, connection_id, service_name, service_version, batch_id
    )
    if future is None:
        return _busy_page()
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), PAGE_SECONDS + ANSWER_GRACE)
    except PageError as error:
        return _error_page(error)
    except TimeoutError:
        return _error_page(
            PageError(
                504,
                "Cannot read the batch",
                f"The server did not answer within {PAGE_SECONDS:g} seconds.",
            )
        )


async def batch_page(
    connection_id: str, service_name: str, service_version: str, batch_id: str
) -> HTMLResponse:
    """The page for one batch: checked address, then fetched and rendered (or the reason
    it cannot be)."""
    values = {
        "connection id": connection_id,
        "service name": service_name,
        "service version": service_version,
        "batch id": batch_id,
    }
    problems = page_problems(connection_id, service_name, service_version, batch_id)
    if problems:
        refused = {name: values[name] for name in problems}
        return _error_page(PageError(400, "Bad address", refused_values_message(refused), problems))
    view = await _fetch(connection_id, service_name, service_version, batch_id)
    if isinstance(view, HTMLResponse):
        return view
    return _page(200, render_batch(view))


def create_app() -> FastAPI:
    """The app Airflow mounts (through :mod:`airflow_provider.ui.plugin`)."""
    from airflow.api_fastapi.core_api.security import requires_access_connection

    app = FastAPI(
        title="mrsdeploy batch status",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    guard: Any = Depends(requires_access_connection(method="GET"))
    app.add_api_route(
        BATCH_ROUTE,
        batch_page,
        methods=["GET"],
        response_class=HTMLResponse,
        dependencies=[guard],
    )
    return app
