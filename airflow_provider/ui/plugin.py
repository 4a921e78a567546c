"""The provider's Airflow plugin: the batch status page, mounted by the API server.

Airflow loads the plugins of installed providers (``plugins`` in the provider's metadata) in
every component, and only the API server serves ``fastapi_apps``. So the app is built on the
first request it serves, not when this module is imported: the scheduler, the DAG processor
and the workers import this module without importing FastAPI or the HTTP stack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider.ui.urls import URL_PREFIX

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class LazyBatchPages:
    """An ASGI app that builds :func:`airflow_provider.ui.page.create_app` on first use and
    hands every request to it."""

    def __init__(self) -> None:
        self._app: Any = None

    def _built(self) -> Any:
        if self._app is None:
            from airflow_provider.ui.page import create_app

            self._app = create_app()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (HTTP request or lifespan) with the built app."""
        await self._built()(scope, receive, send)


class MrsDeployUiPlugin(AirflowPlugin):
    """The batch status page the Submit task's extra link opens, at ``/mrsdeploy/...``."""

    name = "mrsdeploy"
    fastapi_apps = [
        {"app": LazyBatchPages(), "url_prefix": URL_PREFIX, "name": "mrsdeploy batch status"}
    ]
