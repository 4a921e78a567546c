"""Reference server: a runnable, wire-compatible implementation of the operationalization API.

Build the ASGI app with :func:`airflow_provider.server.app.create_app` or run
``python -m airflow_provider.server`` (console script ``mrsdeploy-server``).
"""

from __future__ import annotations
