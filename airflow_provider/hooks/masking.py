"""Register secrets with Airflow's log masker so they never appear in task logs.

Two entry points because the masker also notifies the supervising process: from a coroutine
(triggerer) that must go through the async channel, or it can deadlock with another coroutine's
message in flight.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

#: The masker refuses (and warns about) very short values; skip them quietly instead.
_MIN_MASKED_LENGTH = 5

Secret = tuple[str, str | None]


def _wanted(secret: str | None) -> bool:
    return bool(secret) and len(secret or "") >= _MIN_MASKED_LENGTH


def mask(secret: str | None, name: str | None = None) -> None:
    """Mask ``secret`` in every log line Airflow writes from now on (blocking code only).

    :param secret: the value to hide; None and short values are ignored.
    :param name: optional field name, used by the masker for its bookkeeping.
    """
    if not _wanted(secret):
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - every supported Airflow has it
        log.debug("Airflow's secrets masker is not available; secrets are not masked")
        return
    mask_secret(secret, name)


async def amask(secret: str | None, name: str | None = None) -> None:
    """Async :func:`mask`, for code running on an event loop.

    :param secret: the value to hide; None and short values are ignored.
    :param name: optional field name, used by the masker for its bookkeeping.
    """
    if not _wanted(secret):
        return
    try:
        from airflow.sdk.log import amask_secret
    except ImportError:  # Airflow < 3.3 has only the blocking masker, safe to call there
        mask(secret, name)
        return
    await amask_secret(secret, name)
