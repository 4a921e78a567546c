"""The logger interface the hook's helpers need (stdlib loggers and Airflow's both fit)."""

from __future__ import annotations

from typing import Any, Protocol


class LogLike(Protocol):
    """A logger with printf-style ``debug``, ``info`` and ``warning``."""

    def debug(self, event: Any, *args: Any, **kw: Any) -> Any: ...
    def info(self, event: Any, *args: Any, **kw: Any) -> Any: ...
    def warning(self, event: Any, *args: Any, **kw: Any) -> Any: ...
