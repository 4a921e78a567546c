"""Imports that moved between Airflow 3.x releases, resolved once.

The provider supports Airflow 3.1 and later; names that moved into ``airflow.sdk`` in later
releases are taken from there when present and from their old home otherwise.
"""

from __future__ import annotations

try:  # Airflow >= 3.1
    from airflow.sdk.configuration import conf
except ImportError:  # pragma: no cover - older Airflow 3
    from airflow.configuration import conf  # type: ignore[no-redef,unused-ignore]

try:  # Airflow >= 3.2
    from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowTaskTimeout, TaskDeferred
except ImportError:  # pragma: no cover - exercised by the minimum-version test run
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined,unused-ignore]
        AirflowSensorTimeout,
        AirflowTaskTimeout,
        TaskDeferred,
    )


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, the value Airflow users expect as the default."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


__all__ = [
    "AirflowSensorTimeout",
    "AirflowTaskTimeout",
    "TaskDeferred",
    "conf",
    "default_deferrable",
]
