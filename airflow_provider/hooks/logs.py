"""The logger interface the hook's helpers need; defined with the protocol, which logs too."""

from __future__ import annotations

from airflow_provider.api.logs import LogLike

__all__ = ["LogLike"]
