"""Hooks wired to a reference server through ``AIRFLOW_CONN_*`` environment variables."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider.hooks import MrsDeployHook
from tests.hooks.helpers import HookFactory
from tests.support.server import ReferenceServer

#: Quick retries so the tests that provoke them stay short.
FAST_RETRIES = {"retry_min_wait": 0.05, "retry_max_wait": 0.2}


def connection_json(server: ReferenceServer, **overrides: Any) -> str:
    """The JSON form of an ``mrsdeploy`` connection to ``server`` (as Airflow reads it)."""
    extra = {**FAST_RETRIES, **overrides.pop("extra", {})}
    fields: dict[str, Any] = {**server.airflow_connection(), "extra": extra}
    fields.update(overrides)
    return json.dumps({key: value for key, value in fields.items() if value is not None})


@pytest.fixture
def make_hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[HookFactory]:
    """Build hooks on fresh connection ids; sync sessions are closed at teardown.

    ``make_hook(server, password="x", extra={...}, max_retries=0)``: keyword arguments that are
    connection fields go into the connection, ``timeout``/``max_retries`` go to the hook.
    """
    hooks: list[MrsDeployHook] = []

    def make(server: ReferenceServer, **kwargs: Any) -> MrsDeployHook:
        hook_args = {key: kwargs.pop(key) for key in ("timeout", "max_retries") if key in kwargs}
        conn_id = f"mrsdeploy_test_{uuid.uuid4().hex[:10]}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_json(server, **kwargs))
        hook = MrsDeployHook(conn_id, **hook_args)
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()


@pytest.fixture
def hook(reference_server: ReferenceServer, make_hook: HookFactory) -> MrsDeployHook:
    """A hook logged in as admin on the shared reference server."""
    return make_hook(reference_server)
