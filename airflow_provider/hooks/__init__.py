"""Hooks of the provider."""

from __future__ import annotations

from airflow_provider.api.errors import MrsDeployResponseTooLargeError
from airflow_provider.hooks.mrsdeploy import MrsDeployHook

__all__ = ["MrsDeployHook", "MrsDeployResponseTooLargeError"]
