"""Imports that moved between Airflow 3.x releases, resolved once."""

from __future__ import annotations

try:  # Airflow >= 3.1
    from airflow.sdk.configuration import conf
except ImportError:  # pragma: no cover - older Airflow 3
    from airflow.configuration import conf  # type: ignore[no-redef,unused-ignore]


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, the value Airflow users expect as the default."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


__all__ = ["conf", "default_deferrable"]
