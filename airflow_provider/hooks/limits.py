"""Size limits on what a server sends: defined with the protocol, re-exported for the hook.

See :mod:`airflow_provider.api.limits`; both transports feed it the chunks they read.
"""

from __future__ import annotations

from airflow_provider.api.errors import MrsDeployResponseTooLargeError
from airflow_provider.api.limits import (
    ERROR_BODY_LIMIT,
    PROGRESS_HEAD_BYTES,
    PROGRESS_SCAN_FROM,
    BodyCollector,
    ByteBudget,
    announced_length,
    check_announced,
    too_large,
)

__all__ = [
    "ERROR_BODY_LIMIT",
    "PROGRESS_HEAD_BYTES",
    "PROGRESS_SCAN_FROM",
    "BodyCollector",
    "ByteBudget",
    "MrsDeployResponseTooLargeError",
    "announced_length",
    "check_announced",
    "too_large",
]
