"""Service definitions, their registry, and loading them from JSON configuration.

A service is a Python callable ``fn(ctx, inputs) -> outputs`` registered by import path
(``"package.module:function"``) with the metadata the real server publishes.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider.server.validation import PARAMETER_TYPES

#: A service's function: called with its ``invocation.ServiceContext`` (typed loosely here, so
#: that this module does not import the one that runs services) and the inputs.
ServiceCallable = Callable[[Any, dict[str, Any]], dict[str, Any]]
RUNTIME_TYPES = ("R", "Python", "Realtime")

_STARTED = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


@dataclass
class ServiceDefinition:
    """One published service version."""

    name: str
    version: str
    callable_path: str
    operation_id: str = "consume"
    description: str = ""
    runtime_type: str = "Python"
    inputs: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    output_file_names: list[str] = field(default_factory=list)
    published_by: str = "admin"
    creation_time: str = _STARTED
    _loaded: ServiceCallable | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load(self) -> ServiceCallable:
        """Import the callable once; import errors propagate to the caller."""
        with self._lock:
            if self._loaded is None:
                module_name, _, attr = self.callable_path.partition(":")
                if not module_name or not attr:
                    raise ValueError(
                        f"callable '{self.callable_path}' must look like 'package.module:function'"
                    )
                target: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    target = getattr(target, part)
                if not callable(target):
                    raise TypeError(f"'{self.callable_path}' is not callable")
                self._loaded = target
            return self._loaded

    def to_wire(self, username: str) -> dict[str, Any]:
        """The service object of ``GET /services``."""
        return {
            "name": self.name,
            "version": self.version,
            "versionPublishedBy": self.published_by,
            "creationTime": self.creation_time,
            "snapshotId": None,
            "runtimeType": self.runtime_type,
            "initCode": "",
            "code": self.callable_path,
            "description": self.description,
            "operationId": self.operation_id,
            "inputParameterDefinitions": [{"name": n, "type": t} for n, t in self.inputs],
            "outputParameterDefinitions": [{"name": n, "type": t} for n, t in self.outputs],
            "outputFileNames": list(self.output_file_names),
            "myPermissionOnService": "Edit" if username == self.published_by else "Read",
        }


class ServiceRegistry:
    """Services by name and version, in registration order (the last version is the newest)."""

    def __init__(self, definitions: Iterable[ServiceDefinition] = ()) -> None:
        self._services: dict[tuple[str, str], ServiceDefinition] = {}
        for definition in definitions:
            self.register(definition)

    def register(self, definition: ServiceDefinition) -> None:
        """Add or replace a service version."""
        self._services.pop((definition.name, definition.version), None)
        self._services[(definition.name, definition.version)] = definition

    def all(self) -> list[ServiceDefinition]:
        """Every service version."""
        return list(self._services.values())

    def versions(self, name: str) -> list[ServiceDefinition]:
        """Versions of ``name``, oldest first."""
        return [s for s in self._services.values() if s.name == name]

    def get(self, name: str, version: str) -> ServiceDefinition | None:
        """One service version, or ``None``."""
        return self._services.get((name, version))


def _parameters(raw: Any, what: str, service: str) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{service}: {what} must be a list")
    result = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError(f"{service}: each of {what} needs a 'name'")
        kind = item.get("type")
        if kind not in PARAMETER_TYPES:
            raise ValueError(
                f"{service}: {what} '{item['name']}' has type {kind!r}; "
                f"expected one of {', '.join(PARAMETER_TYPES)}"
            )
        result.append((item["name"], kind))
    return result


def definition_from_config(raw: dict[str, Any]) -> ServiceDefinition:
    """Build a definition from one config entry (keys as in the wire service object).

    Required: ``name``, ``version``, ``callable``. Optional: ``operationId``, ``description``,
    ``runtimeType``, ``inputParameterDefinitions``, ``outputParameterDefinitions``,
    ``outputFileNames``, ``versionPublishedBy``, ``creationTime``.
    """
    if not isinstance(raw, dict):
        raise ValueError("each service entry must be a JSON object")
    for key in ("name", "version", "callable"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ValueError(f"service entry {raw.get('name', '?')!r} needs a string '{key}'")
    label = f"{raw['name']}/{raw['version']}"
    runtime = raw.get("runtimeType", "Python")
    if runtime not in RUNTIME_TYPES:
        raise ValueError(f"{label}: runtimeType must be one of {', '.join(RUNTIME_TYPES)}")
    files = raw.get("outputFileNames", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ValueError(f"{label}: outputFileNames must be a list of strings")
    definition = ServiceDefinition(
        name=raw["name"],
        version=raw["version"],
        callable_path=raw["callable"],
        operation_id=str(raw.get("operationId") or "consume"),
        description=str(raw.get("description", "")),
        runtime_type=runtime,
        inputs=_parameters(raw.get("inputParameterDefinitions"), "inputs", label),
        outputs=_parameters(raw.get("outputParameterDefinitions"), "outputs", label),
        output_file_names=list(files),
        published_by=str(raw.get("versionPublishedBy", "admin")),
    )
    if "creationTime" in raw:
        definition.creation_time = str(raw["creationTime"])
    return definition


def load_services_config(path: Path) -> list[ServiceDefinition]:
    """Read a services file: ``{"services": [...]}`` or a bare list of entries."""
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = data.get("services") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of services or {{'services': [...]}}")
    return [definition_from_config(entry) for entry in entries]
