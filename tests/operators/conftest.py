"""Fixtures of the operator tests that retry a Submit."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.state_store import MemoryStateStore


@pytest.fixture
def slow_store(task_context: dict[str, Any], faults: Any) -> MemoryStateStore:
    """An empty state store in the task's context, and rows that take a second each on the
    server: a first try's batches still run when its retry starts."""
    faults({"rowDelaySeconds": 1.0})
    task_context["task_state_store"] = MemoryStateStore()
    return task_context["task_state_store"]
