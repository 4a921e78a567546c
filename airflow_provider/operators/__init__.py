"""Operators of the mrsdeploy provider."""

from airflow_provider.operators.collect import MrsDeployCollectBatchOperator
from airflow_provider.operators.repair import MrsDeployRepairFailedRowsOperator
from airflow_provider.operators.submit import MrsDeploySubmitBatchOperator

__all__ = [
    "MrsDeployCollectBatchOperator",
    "MrsDeployRepairFailedRowsOperator",
    "MrsDeploySubmitBatchOperator",
]
