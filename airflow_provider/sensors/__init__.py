"""Sensors of the mrsdeploy provider."""

from airflow_provider.sensors.batch import MrsDeployBatchSensor

__all__ = ["MrsDeployBatchSensor"]
