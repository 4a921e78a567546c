"""Collect's, Repair's and Submit's numeric and flag parameters are checked when the DAG is
parsed: a value of the wrong type was taken for what it is not (``max_failed_ratio=2`` let every
row fail, ``include_files="false"`` downloaded the files) or failed only after the task had
started work (``max_concurrent_downloads=2.5`` raised a bare ``TypeError`` once Collect had
claimed its destination and withdrawn the manifest)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider.api import MrsDeployConfigurationError
from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeployRepairFailedRowsOperator,
    MrsDeploySubmitBatchOperator,
)


def collect(**kwargs: Any) -> MrsDeployCollectBatchOperator:
    return MrsDeployCollectBatchOperator(task_id="c", batch_id="b1", destination="/x", **kwargs)


def repair(**kwargs: Any) -> MrsDeployRepairFailedRowsOperator:
    return MrsDeployRepairFailedRowsOperator(task_id="r", destination="/x", **kwargs)


BUILDERS = {"collect": collect, "repair": repair}

WRONG = [
    ("max_concurrent_downloads", 2.5),
    ("max_concurrent_downloads", 0),
    ("max_concurrent_downloads", True),
    ("include_files", "false"),
    ("include_files", 0),
    ("progress_interval", math.nan),
    ("progress_interval", "10"),
    ("max_failed_rows", -1),
    ("max_failed_rows", 2.5),
    ("max_failed_rows", "5"),
    ("max_failed_ratio", 2),
    ("max_failed_ratio", -0.1),
    ("max_failed_ratio", math.nan),
    ("max_failed_ratio", "0.1"),
    ("max_failed_ratio", True),
]


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize(("name", "value"), WRONG, ids=[f"{n}={v!r}" for n, v in WRONG])
def test_a_wrong_value_is_refused_when_the_dag_is_parsed(
    builder: str, name: str, value: object
) -> None:
    with pytest.raises(MrsDeployConfigurationError, match=name) as info:
        BUILDERS[builder](**{name: value})
    assert repr(value) in str(info.value)


RIGHT = [
    ("max_concurrent_downloads", 1),
    ("include_files", False),
    ("progress_interval", 0.5),
    ("progress_interval", timedelta(seconds=0.5)),
    ("max_failed_rows", 0),
    ("max_failed_ratio", 0),
    ("max_failed_ratio", 1),
    ("max_failed_ratio", 0.25),
]


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize(("name", "value"), RIGHT, ids=[f"{n}={v!r}" for n, v in RIGHT])
def test_the_edges_of_each_range_are_accepted(builder: str, name: str, value: object) -> None:
    BUILDERS[builder](**{name: value})


@pytest.mark.parametrize("value", [2.5, 0, True, "100"])
def test_max_records_per_batch_is_a_whole_number(value: object) -> None:
    with pytest.raises(MrsDeployConfigurationError, match="max_records_per_batch"):
        MrsDeploySubmitBatchOperator(
            task_id="s",
            service_name="s",
            service_version="v",
            records=[{"a": 1}],
            max_records_per_batch=value,  # type: ignore[arg-type]
        )
    with pytest.raises(MrsDeployConfigurationError, match="max_records_per_batch"):
        repair(max_records_per_batch=value)


@pytest.mark.parametrize("value", [0, 1.5, "3", True])
def test_max_attempts_is_a_whole_number(value: object) -> None:
    with pytest.raises(MrsDeployConfigurationError, match="max_attempts"):
        repair(max_attempts=value)
