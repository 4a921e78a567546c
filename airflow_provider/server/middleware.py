"""Pure ASGI middleware: access log and request body limit.

Pure ASGI (rather than ``BaseHTTPMiddleware``) so request bodies stream through untouched and
counting them costs nothing but an addition per chunk.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider.server.errors import ApiError, error_body

access_log = logging.getLogger("airflow_provider.server.access")


async def send_json(send: Send, status: int, body: Any, headers: dict[str, str]) -> None:
    """Send a complete JSON response."""
    payload = json.dumps(body).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def log_access(scope: Scope, status: int, started: float) -> None:
    """The access log line of one request: method, path (never the query string: it may hold
    a token), status (500 when no response started) and duration since ``started``
    (a :func:`time.perf_counter` value)."""
    access_log.info(
        "%s %s %d %.1fms",
        scope["method"],
        scope["path"],
        status or 500,
        (time.perf_counter() - started) * 1000,
    )


class AccessLogMiddleware:
    """One line per request: method, path (never the query string: it may hold a token),
    status and duration. Headers and bodies are never logged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def logged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            log_access(scope, status, started)


class BodyLimitMiddleware:
    """Answers 413 for bodies above ``max_bytes``: by ``Content-Length`` before reading, and
    by counting while reading (chunked uploads or a lying header)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = ApiError(413, f"The request body exceeds the limit of {self.max_bytes} bytes.")
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_json(send, 400, error_body(400, "Invalid Content-Length."), {})
                    return
                if declared > self.max_bytes:
                    await send_json(send, 413, too_large.body(), {"Connection": "close"})
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large
            return message

        await self.app(scope, counting_receive, send)
