"""The batch status page: a small FastAPI app Airflow's API server mounts at ``/mrsdeploy``.

Signing in is Airflow's: the route depends on Airflow's own ``requires_access_connection``
check, which reads the user from the API server's session cookie (or a bearer token) and asks
the configured auth manager whether that user may read the connection named in the address.
Nobody signed in gets 401, a user without that right 403, before any value is looked up or
any request is sent. The batch is then fetched by the API server with that connection, so the
browser never holds a token of the server, and the connection's secrets never reach the page.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from airflow_provider.ui.fetch import PageError, fetch_batch
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


def _page(status: int, html: str) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def batch_page(
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
        error = PageError(400, "Bad address", refused_values_message(refused), problems)
        return _page(error.status, render_error(error))
    try:
        view = fetch_batch(connection_id, service_name, service_version, batch_id)
    except PageError as error:
        return _page(error.status, render_error(error))
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
