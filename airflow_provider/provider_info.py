"""Provider metadata: connection type and form, hooks, operators, sensors, triggers."""

from __future__ import annotations

from typing import Any

DISTRIBUTION_NAME = "airflow-provider-mrsdeploy"


def provider_info() -> dict[str, Any]:
    """Return the dictionary Airflow reads through the ``apache_airflow_provider`` entry point."""
    from airflow_provider import __version__

    return {
        "package-name": DISTRIBUTION_NAME,
        "name": "R Server / Machine Learning Server (mrsdeploy)",
        "description": "Asynchronous batch scoring against the R Server / ML Server "
        "operationalization API.",
        "versions": [__version__],
    }
