"""Helpers for tests that make the same call on the blocking and the async path of a hook.

Connection settings are read, and sessions built, on each path by code of its own (the
blocking lookup and ``requests``, the async lookup and ``aiohttp``): a case that must behave
alike on both is run once per path, with these helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider.hooks import MrsDeployHook

#: The two paths, as test parameters.
PATHS = ("sync", "async")

#: Any batch: the server answers 404 once the TLS handshake and the login passed.
SERVICE, VERSION, BATCH = "mtService", "v1.0.0", "no-such-batch"

HookMaker = Callable[..., MrsDeployHook]


def poll(hook: MrsDeployHook, path: str) -> None:
    """Ask for a batch's status once on ``path`` (``"sync"`` or ``"async"``), then close the
    hook's session, whatever happens."""
    if path == "sync":
        try:
            hook.get_batch_status(SERVICE, VERSION, BATCH)
        finally:
            hook.close()
        return

    async def run() -> None:
        try:
            await hook.aget_batch_status(SERVICE, VERSION, BATCH)
        finally:
            await hook.aclose()

    asyncio.run(run())


def connection_maker(monkeypatch: pytest.MonkeyPatch) -> HookMaker:
    """``make(host=..., port=..., password=..., extra={...}, timeout=...)``: a hook on a new
    ``AIRFLOW_CONN_*`` connection (no retries unless the extras ask for them); ``timeout``
    and ``max_retries`` keywords go to the hook."""

    def make(
        *, host: str, port: int | None = None, password: str = "pw-123456", **kwargs: Any
    ) -> MrsDeployHook:
        hook_args = {key: kwargs.pop(key) for key in ("timeout", "max_retries") if key in kwargs}
        extra = {"max_retries": 0, **kwargs.pop("extra", {})}
        fields: dict[str, Any] = {"conn_type": "mrsdeploy", "host": host, "port": port}
        fields.update(login="admin", password=password, extra=extra)
        conn_id = f"mrsdeploy_paths_{uuid.uuid4().hex[:10]}"
        body = json.dumps({key: value for key, value in fields.items() if value is not None})
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", body)
        return MrsDeployHook(conn_id, **hook_args)

    return make


@contextlib.contextmanager
def silent_listener() -> Iterator[socket.socket]:
    """A loopback socket that listens but never accepts, closed on exit: a test pointing a
    hook at it checks with :func:`assert_nothing_connected` that a refused setting sent
    nothing."""
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        yield listener
    finally:
        listener.close()


def assert_nothing_connected(listener: socket.socket) -> None:
    """No connection reached ``listener`` (see :func:`silent_listener`)."""
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return
    connection.close()
    raise AssertionError("the hook connected to the server although its settings were refused")
