"""Imports that moved between Airflow 3.x releases, resolved once.

The provider supports Airflow 3.1 and later; names that moved into ``airflow.sdk`` in later
releases are taken from there when present and from their old home otherwise.
"""

from __future__ import annotations

import sys

try:  # Airflow >= 3.1
    from airflow.sdk.configuration import conf
except ImportError:  # pragma: no cover - older Airflow 3
    from airflow.configuration import conf  # type: ignore[no-redef,unused-ignore]

try:  # Airflow >= 3.2
    from airflow.sdk.exceptions import (
        AirflowSensorTimeout,
        AirflowSkipException,
        AirflowTaskTimeout,
        TaskDeferralError,
        TaskDeferralTimeout,
        TaskDeferred,
    )
except ImportError:  # pragma: no cover - exercised by the minimum-version test run
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined,unused-ignore]
        AirflowSensorTimeout,
        AirflowSkipException,
        AirflowTaskTimeout,
        TaskDeferralError,
        TaskDeferralTimeout,
        TaskDeferred,
    )

if sys.version_info >= (3, 11):
    from asyncio import timeout as async_timeout
    from asyncio import timeout_at as async_timeout_at
else:  # pragma: no cover - Python 3.10 (aiohttp installs async-timeout there)
    from async_timeout import timeout as async_timeout
    from async_timeout import timeout_at as async_timeout_at


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, the value Airflow users expect as the default."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


__all__ = [
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
