"""Request bodies that can be sent again: defined with the protocol, which decides on resends."""

from __future__ import annotations

from airflow_provider.api.body import BodyInput, RequestBody, request_body

__all__ = ["BodyInput", "RequestBody", "request_body"]
