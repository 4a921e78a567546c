"""The logger interface the protocol's decisions write to.

A structural type, so the protocol needs no logging framework: a stdlib ``logging.Logger`` and
Airflow's task logger both fit. Only renewals, retries and resumes are logged, never tokens or
bodies.
"""

from __future__ import annotations

from typing import Any, Protocol


class LogLike(Protocol):
    """A logger with printf-style ``debug``, ``info`` and ``warning``."""

    def debug(self, event: Any, *args: Any, **kw: Any) -> Any: ...
    def info(self, event: Any, *args: Any, **kw: Any) -> Any: ...
    def warning(self, event: Any, *args: Any, **kw: Any) -> Any: ...
