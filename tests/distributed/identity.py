"""The host name each component of the distributed deployment reports to Airflow.

Every process of the deployment runs on this machine, so ``socket.getfqdn()`` would give the
same name to both Celery workers and both triggerers. Each one is started with
``[core] hostname_callable = tests.distributed.identity.host_name`` and its own
``MRSDEPLOY_HOST_NAME``, so task instances and triggerer jobs record which "host" ran them.
"""

from __future__ import annotations

import os
import socket

HOST_NAME_VARIABLE = "MRSDEPLOY_HOST_NAME"


def host_name() -> str:
    """The component's name (``worker-1``, ``triggerer-2``...), else the machine's."""
    return os.environ.get(HOST_NAME_VARIABLE) or socket.getfqdn()
