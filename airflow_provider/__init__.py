"""Apache Airflow provider for batch scoring on R Server / Machine Learning Server."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow (entry point ``apache_airflow_provider``)."""
    from airflow_provider.provider_info import provider_info

    return provider_info()
