"""Imports that moved between Airflow 3.x releases, resolved once.

The provider supports Airflow 3.1 and later. Names that moved into ``airflow.sdk`` are taken
from ``apache-airflow-providers-common-compat`` (``airflow.providers.common.compat.sdk``), the
shim every official provider uses, so this provider follows the same rules as they do. The two
deferral errors that shim does not carry are resolved here the same way: from ``airflow.sdk``
when present, from their old home otherwise.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import (
    AirflowNotFoundException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
    TaskDeferred,
    conf,
)

try:  # Airflow >= 3.2
    from airflow.sdk.exceptions import TaskDeferralError, TaskDeferralTimeout
except ImportError:  # pragma: no cover - exercised by the minimum-version test run
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined,unused-ignore]
        TaskDeferralError,
        TaskDeferralTimeout,
    )

from asyncio import timeout as async_timeout
from asyncio import timeout_at as async_timeout_at


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, the value Airflow users expect as the default."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


__all__ = [
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "TaskDeferralError",
    "TaskDeferralTimeout",
    "TaskDeferred",
    "async_timeout",
    "async_timeout_at",
    "conf",
    "default_deferrable",
]
