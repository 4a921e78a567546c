"""The services a server offers: the demo services and those of a configuration file."""

from __future__ import annotations

from pathlib import Path

from airflow_provider.server.demo_services import DEMO_SERVICES
from airflow_provider.server.services import (
    ServiceRegistry,
    definition_from_config,
    load_services_config,
)


def build_registry(services_config: Path | None, include_demo: bool) -> ServiceRegistry:
    """The demo services (unless disabled) followed by the configured ones."""
    definitions = [definition_from_config(e) for e in DEMO_SERVICES] if include_demo else []
    if services_config is not None:
        definitions.extend(load_services_config(services_config))
    return ServiceRegistry(definitions)
