"""Fault injection for tests, installed only with ``--enable-fault-hooks``: the admin-only
``/_faults`` routes that configure it and the middleware that answers with injected HTTP errors.

Nothing here is part of the operationalization API; the wire routes only ask the fault points
(:mod:`.fault_points`), which a server without fault hooks answers with "no fault".
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from airflow_provider.server.dependencies import Admin, parse_json_body
from airflow_provider.server.errors import error_body
from airflow_provider.server.faults import Faults
from airflow_provider.server.middleware import send_json
from airflow_provider.server.responses import JSONResponse


def install_fault_hooks(app: FastAPI, faults: Faults) -> None:
    """Add the injected-HTTP-error middleware and the ``/_faults`` admin routes."""
    app.add_middleware(FaultInjectionMiddleware, faults=faults)

    @app.get("/_faults")
    def get_faults(_: Admin) -> Response:
        return JSONResponse(faults.to_json())

    @app.put("/_faults")
    async def put_faults(request: Request, _: Admin) -> Response:
        faults.configure(parse_json_body(await request.body()))
        return JSONResponse(faults.to_json())

    @app.delete("/_faults")
    def delete_faults(_: Admin) -> Response:
        faults.reset()
        return JSONResponse(faults.to_json())


class FaultInjectionMiddleware:
    """Answers matching requests with an injected 429/503 and ``Retry-After`` (fault hooks)."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_faults"):
            fault = self.faults.take_http_error(scope["method"], scope["path"])
            if fault is not None:
                message = f"Injected HTTP {fault.status}; retry after {fault.retry_after} s."
                await send_json(
                    send,
                    fault.status,
                    error_body(fault.status, message),
                    {"Retry-After": str(fault.retry_after)},
                )
                return
        await self.app(scope, receive, send)
