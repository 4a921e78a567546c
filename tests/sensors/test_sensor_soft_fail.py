"""A deferred sensor with ``soft_fail`` or ``never_fail`` skips on a provider error.

Airflow's sensor turns only its own exceptions into a skip when a deferred sensor resumes;
provider errors are plain exceptions, so the sensor does it for them.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider.compat import AirflowSkipException
from airflow_provider.exceptions import MrsDeployBatchFailedError
from airflow_provider.sensors import MrsDeployBatchSensor


def _resumed(**kwargs: Any) -> MrsDeployBatchSensor:
    sensor = MrsDeployBatchSensor(
        task_id="wait",
        batch_id="b-1",
        service_name="mtService",
        service_version="v1.0.0",
        deferrable=True,
        **kwargs,
    )

    def failed(context: Any, event: Any = None) -> None:
        raise MrsDeployBatchFailedError("batch b-1 failed")

    sensor.execute_complete = failed  # type: ignore[method-assign]
    return sensor


@pytest.mark.parametrize("flag", ["soft_fail", "never_fail"])
def test_a_provider_error_after_deferral_skips_with_the_flag(flag: str) -> None:
    sensor = _resumed(**{flag: True})
    with pytest.raises(AirflowSkipException, match=flag) as info:
        sensor.resume_execution("execute_complete", {"event": {}}, {})  # type: ignore[arg-type]
    assert isinstance(info.value.__cause__, MrsDeployBatchFailedError)


def test_a_provider_error_after_deferral_fails_without_it() -> None:
    with pytest.raises(MrsDeployBatchFailedError):
        _resumed().resume_execution("execute_complete", {"event": {}}, {})  # type: ignore[arg-type]
