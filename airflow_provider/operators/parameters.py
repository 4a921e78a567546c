"""Checks of the operators' numeric parameters, made when the DAG is parsed.

A value of the wrong type is otherwise taken for what it is not (``"false"`` is true, a ratio
of ``2`` or ``nan`` never trips), or fails only once the task has started work: ``2.5``
downloads raised a bare ``TypeError`` after Collect had claimed its destination.
"""

from __future__ import annotations

import math

from airflow_provider.api import MrsDeployConfigurationError
from airflow_provider.waiting.deadlines import as_seconds, is_duration


def whole_number(name: str, value: object, minimum: int) -> int:
    """``value`` when it is an ``int`` (not a bool) of at least ``minimum``.

    :raises MrsDeployConfigurationError: naming the parameter and the value.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MrsDeployConfigurationError(
            f"{name} must be a whole number >= {minimum}, got {value!r}"
        )
    return value


def optional_whole_number(name: str, value: object, minimum: int) -> int | None:
    """``value`` when it is None or a :func:`whole_number`."""
    return None if value is None else whole_number(name, value, minimum)


def optional_share(name: str, value: object) -> float | None:
    """``value`` when it is None or a real number from 0 to 1 (a share of the rows).

    :raises MrsDeployConfigurationError: naming the parameter and the value.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise MrsDeployConfigurationError(
            f"{name} must be None or a number from 0 to 1 (a share of the rows), got {value!r}"
        )
    return float(value)


def positive_seconds(name: str, value: object) -> float:
    """``value`` in seconds when it is a real number above 0 (not NaN) or a ``timedelta``.

    :raises MrsDeployConfigurationError: naming the parameter and the value.
    """
    seconds = as_seconds(value) if is_duration(value) else math.nan  # type: ignore[arg-type]
    if not seconds > 0:  # NaN is not above 0 either
        raise MrsDeployConfigurationError(
            f"{name} must be a positive number of seconds, given as a number or a timedelta, "
            f"got {value!r}"
        )
    return seconds


def flag(name: str, value: object) -> bool:
    """``value`` when it is ``True`` or ``False`` (``"false"`` would count as true).

    :raises MrsDeployConfigurationError: naming the parameter and the value.
    """
    if not isinstance(value, bool):
        raise MrsDeployConfigurationError(f"{name} must be True or False, got {value!r}")
    return value
