"""Inline ``records`` are data, not templates: Airflow renders only a records path or URL.

Airflow renders every string inside a list template field, so rows given inline would have
``"x = {{ 6 * 7 }}"`` sent as ``"x = 42"``, and a value holding ``{{`` would fail the task
before it ran, while the same rows as a DataFrame went through untouched. Rendering here is
Airflow's own (``render_template_fields``, a mapped task's rendering, ``dag.test()``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import DAG, BaseOperator, ObjectStoragePath

from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeployRepairFailedRowsOperator,
    MrsDeploySubmitBatchOperator,
)

#: Rows whose text holds Jinja markers: a template Jinja would evaluate, and one it would refuse.
ROWS = [
    {"text": "x = {{ 6 * 7 }}", "n": 1},
    {"text": "unbalanced {{ brace", "n": 1},
    {"text": "{% raw %}kept{% endraw %} {# and this #}", "n": 1},
]
TEXTS = [row["text"] for row in ROWS]
SERVICE = {"service_name": "echoService", "service_version": "v1.0.0"}


def submit(task_id: str = "submit", **kwargs: Any) -> BaseOperator:
    return MrsDeploySubmitBatchOperator(task_id=task_id, **SERVICE, **kwargs)


def collect(task_id: str = "collect", **kwargs: Any) -> BaseOperator:
    return MrsDeployCollectBatchOperator(
        task_id=task_id, batch_id="b", destination="/tmp/out/{{ ds }}", **SERVICE, **kwargs
    )


def repair(task_id: str = "repair", **kwargs: Any) -> BaseOperator:
    return MrsDeployRepairFailedRowsOperator(
        task_id=task_id, destination="/tmp/out/{{ ds }}", **kwargs
    )


OPERATORS = [submit, collect, repair]


class PullingTaskInstance:
    """What rendering asks of a task instance: its map index, and XComs to resolve."""

    map_index = 0

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def xcom_pull(self, *args: Any, **kwargs: Any) -> Any:
        return self.value


def render(operator: BaseOperator, **context: Any) -> None:
    """Render the operator's template fields as the task runner does (the DAG's environment)."""
    operator.render_template_fields({"ds": "2026-01-01", **context})


@pytest.mark.parametrize("make", OPERATORS)
def test_inline_rows_are_sent_as_given(make: Any) -> None:
    with DAG("inline_rows", schedule=None, start_date=datetime(2026, 1, 1)):
        operator = make(records=[dict(row) for row in ROWS])
    render(operator)
    assert operator.records == ROWS


@pytest.mark.parametrize("make", OPERATORS)
def test_a_dataframe_is_left_as_it_is(make: Any) -> None:
    frame = pd.DataFrame(ROWS)
    operator = make(records=frame)
    render(operator)
    assert operator.records is frame
    assert frame["text"].tolist() == TEXTS


@pytest.mark.parametrize("make", OPERATORS)
def test_a_records_path_is_still_a_template(make: Any) -> None:
    operator = make(
        records="s3://lake/cars/{{ ds }}.parquet", records_format="{{ 'par' ~ 'quet' }}"
    )
    render(operator)
    assert operator.records == "s3://lake/cars/2026-01-01.parquet"
    assert operator.records_format == "parquet"


@pytest.mark.parametrize("make", OPERATORS)
def test_an_object_storage_path_is_still_rendered(make: Any) -> None:
    operator = make(records=ObjectStoragePath("file:///data/{{ ds }}.csv"))
    render(operator)
    assert str(operator.records) == "file:///data/2026-01-01.csv"


@pytest.mark.parametrize("make", OPERATORS)
def test_records_from_an_upstream_task_are_resolved(make: Any) -> None:
    """An ``XComArg`` is resolved by rendering: skipping it would hand the task the reference.
    The rows it resolves to are data too, and are not rendered either."""
    with DAG("from_xcom", schedule=None, start_date=datetime(2026, 1, 1)):
        upstream = submit(task_id="upstream", records=ROWS)
        operator = make(records=upstream.output)
    render(operator, ti=PullingTaskInstance(ROWS))
    assert operator.records == ROWS


def test_a_mapped_task_keeps_its_inline_rows() -> None:
    """A mapped task is rendered through the unmapped operator's ``_do_render_template_fields``
    (not its ``render_template_fields``): the rows stay data there too."""
    with DAG("mapped", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        mapped = MrsDeploySubmitBatchOperator.partial(
            task_id="mapped", records=ROWS, **SERVICE
        ).expand(parallel_count=[1, 2])
    context: dict[str, Any] = {
        "ds": "2026-01-01",
        "ti": PullingTaskInstance(),
        "dag": dag,
        "dag_run": SimpleNamespace(conf={}),
        "params": {},
    }
    mapped.render_template_fields(context)  # type: ignore[arg-type]
    unmapped = context["task"]
    assert isinstance(unmapped, MrsDeploySubmitBatchOperator)
    assert unmapped.records == ROWS
    assert unmapped.parallel_count == 1


def test_rows_with_jinja_markers_are_scored_and_collected_as_written(
    mrsdeploy_conn: str, task_context: dict[str, Any], tmp_path: Path
) -> None:
    """Against the reference server, each operator rendered as the task runner does: the
    service echoes each text exactly as written, and the inputs written beside the outputs
    are the texts as written.

    (``dag.test()`` runs only DAGs of the configured DAGs folder, the shipped examples.)
    """
    with DAG("inline_rows_end_to_end", schedule=None, start_date=datetime(2026, 1, 1)):
        score = submit(task_id="score", records=ROWS, wait_for_completion=True, poll_interval=0.2)
        land = MrsDeployCollectBatchOperator(
            task_id="land",
            batch_id="{{ ti.xcom_pull(task_ids='score') }}",
            destination=str(tmp_path / "{{ ds }}"),
            output_format="jsonl",
            records=ROWS,
        )
    render(score, **task_context)
    task_context["ti"].store[("score", "return_value")] = score.execute(task_context)
    render(land, **task_context)
    land.execute(task_context)
    table = pd.read_json(tmp_path / "2026-01-01" / "outputs.jsonl", lines=True)
    assert table["echo"].tolist() == TEXTS
    assert table["input_text"].tolist() == TEXTS
