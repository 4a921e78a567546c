"""Triggers of the mrsdeploy provider."""

from airflow_provider.triggers.batch import MrsDeployBatchTrigger

__all__ = ["MrsDeployBatchTrigger"]
