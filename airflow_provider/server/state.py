"""The server's parts, shared by the routes and the fast paths (kept apart from the app so that
the fast paths need not import it)."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider.server.auth import Authenticator
from airflow_provider.server.db import Store
from airflow_provider.server.executor import Executor
from airflow_provider.server.fault_points import NO_FAULTS, FaultPoints
from airflow_provider.server.faults import Faults
from airflow_provider.server.services import ServiceRegistry
from airflow_provider.server.settings import ServerSettings


@dataclass
class ServerState:
    """The server's parts, shared by the routes through ``app.state.server``."""

    settings: ServerSettings
    store: Store
    auth: Authenticator
    registry: ServiceRegistry
    executor: Executor
    #: The fault configuration, when the server was started with fault hooks.
    faults: Faults | None
    generated_admin_password: str | None

    @property
    def fault_points(self) -> FaultPoints:
        """What the API asks before each step it may be made to fail (never None)."""
        return self.faults if self.faults is not None else NO_FAULTS
