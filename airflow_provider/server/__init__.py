"""Reference server: a runnable, wire-compatible implementation of the operationalization API.

Build the ASGI app with :func:`airflow_provider.server.app.create_app` or run
``python -m airflow_provider.server`` (console script ``mrsdeploy-server``).

The server is optional: the provider itself never imports it, and its libraries (FastAPI,
uvicorn) come with the ``server`` extra, ``pip install "airflow-provider-mrsdeploy[server]"``.
"""

from __future__ import annotations

from importlib.util import find_spec

_MISSING = [name for name in ("fastapi", "uvicorn") if find_spec(name) is None]
if _MISSING:
    raise ImportError(
        f"the reference server needs {', '.join(_MISSING)}: install the provider with its "
        'server extra, pip install "airflow-provider-mrsdeploy[server]"'
    )
