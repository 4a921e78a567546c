"""Reading a connection's true/false extras: one set of spellings for every such extra."""

from __future__ import annotations

from typing import Any

from airflow_provider.api.errors import MrsDeployConfigurationError
from airflow_provider.api.identifiers import shown

TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0"})


def spelled_flag(value: Any) -> bool | None:
    """``value`` as a boolean when it is one or spells one (any case), else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
    return None


def flag(extras: dict[str, Any], key: str, *, default: bool) -> bool:
    """The extra ``key`` as a boolean; ``default`` when it is absent or empty.

    :raises MrsDeployConfigurationError: for any other value, saying what was given.
    """
    value = extras.get(key)
    if value is None or value == "":
        return default
    parsed = spelled_flag(value)
    if parsed is None:
        raise MrsDeployConfigurationError(
            f"connection extra {key!r} must be true or false (got {shown(value)})"
        )
    return parsed
