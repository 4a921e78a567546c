"""A task state store kept in memory, for calling operators' ``execute`` directly."""

from __future__ import annotations

from typing import Any


class MemoryStateStore:
    """Airflow's per-task-instance ``task_state_store`` interface (get / set / delete), kept in
    memory; the real one is exercised by the end-to-end suite under real processes."""

    def __init__(self, fail_on_set: bool = False) -> None:
        self.values: dict[str, Any] = {}
        self.fail_on_set = fail_on_set

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        if self.fail_on_set:
            raise ConnectionError("state store unreachable")
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
