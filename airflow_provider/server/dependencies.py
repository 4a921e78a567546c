"""What the routes take from a request: its user (from the bearer token) and its JSON body."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from airflow_provider.server.auth import ADMIN_USER
from airflow_provider.server.errors import ApiError
from airflow_provider.server.state import ServerState


def parse_json_body(raw: bytes) -> Any:
    """A request body as JSON, or a 400 saying what is wrong with it."""
    if not raw.strip():
        raise ApiError(400, "The request body is empty; a JSON document is required.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # the parser's own limit, not a fault of the server
        raise ApiError(400, "The request body is not valid JSON: it is nested too deeply.") from exc


async def current_user(request: Request) -> str:
    """Dependency: the user behind the request's bearer token (401 otherwise).

    A token seen before is resolved from memory on the event loop; only a new one costs a
    database read, in the thread pool.
    """
    state: ServerState = request.app.state.server
    header = request.headers.get("authorization")
    user = state.auth.cached_user(header)
    if user is not None:
        return user
    return await run_in_threadpool(state.auth.user_for_header, header)


async def admin_user(request: Request) -> str:
    """Dependency: like :func:`current_user`, but only the admin (403 for anyone else)."""
    user = await current_user(request)
    if user != ADMIN_USER:
        raise ApiError(403, "This call is reserved to the admin user.")
    return user


User = Annotated[str, Depends(current_user)]
Admin = Annotated[str, Depends(admin_user)]
