"""Waiting for batches, in one place: how the server's answers read as progress
(:mod:`.progress`), the trigger's events (:mod:`.events`), the deadline of a wait and of the
calls inside it (:mod:`.deadlines`), and what a task does while and after it waits
(:mod:`.tasks`: polling from the worker, cancelling, reading an event).

Nothing is imported here: the hooks take :mod:`.deadlines` alone, and the names of
:mod:`.tasks` that were importable from ``airflow_provider.waiting`` still are, loaded on use.
"""

from __future__ import annotations

import importlib
from typing import Any

#: What ``airflow_provider.waiting`` exported before it became a package.
_TASK_NAMES = frozenset(
    {
        "cancel_batches",
        "check_batches",
        "complete_from_event",
        "compute_deadline",
        "deferral_timed_out",
        "deferral_timeout",
        "handle_timeout",
        "raise_if_failed",
        "wait_until_done",
        "MrsDeployBatchFailedError",
        "MrsDeployBatchTimeoutError",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _TASK_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.tasks"), name)
