"""Parameters as DAG authors write them: an upstream task's output or a Jinja statement for a
templated field, text where a flag or a number is meant, a template that renders nothing.
Each is either taken (and checked once Airflow has rendered it) or refused when the DAG is
parsed with a message naming the parameter, never taken for something else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.api import MrsDeployConfigurationError
from airflow_provider.batch_set import to_batch_set
from airflow_provider.exceptions import MrsDeployBatchSetError, MrsDeployRecordsError
from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeployRepairFailedRowsOperator,
    MrsDeploySubmitBatchOperator,
)
from airflow_provider.records import load_records
from airflow_provider.sensors import MrsDeployBatchSensor
from tests.dags.test_example_dags import airflow_db as airflow_db  # a fixture

SERVICE = {"service_name": "mtService", "service_version": "v1.0.0"}
CARS = [{"hp": 110, "wt": 2.62}, {"hp": 93, "wt": 2.32}, {"hp": 245, "wt": 3.84}]


#: Submit and Collect whose parallel_count and output_format come from an upstream task.
SETTINGS_DAG = """
from datetime import datetime
from airflow.sdk import DAG, task
from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeploySubmitBatchOperator,
)

with DAG("mrsdeploy_parameter_forms", schedule=None, start_date=datetime(2026, 1, 1)):

    @task(multiple_outputs=True)
    def settings():
        return {"pc": 2, "fmt": "csv"}

    chosen = settings()
    submit = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="mtService",
        service_version="v1.0.0",
        records=[{"hp": 110, "wt": 2.62}, {"hp": 93, "wt": 2.32}, {"hp": 245, "wt": 3.84}],
        parallel_count=chosen["pc"],
        wait_for_completion=True,
        poll_interval=0.2,
    )
    MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=submit.output,
        destination="{{ dag_run.conf['destination'] }}",
        output_format=chosen["fmt"],
    )
"""


def test_an_upstream_tasks_output_for_a_templated_number_or_format_is_taken(
    airflow_db: None, mrsdeploy_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused when the DAG was parsed, as "parallel_count must be a whole number ... (got
    XComArg(...))": Airflow resolves it only when the task runs."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "parameter_forms.py").write_text(SETTINGS_DAG)
    # dag.test() runs a DAG of the DAG folder's bundle (it serializes it from there); the
    # bundle reads the folder Airflow settled on when it started.
    from airflow import settings

    monkeypatch.setattr(settings, "DAGS_FOLDER", str(folder))
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    destination = tmp_path / "scores"
    run = bag.get_dag("mrsdeploy_parameter_forms").test(run_conf={"destination": str(destination)})
    assert run.state == "success"
    table = pd.read_csv(destination / "outputs.csv")
    assert list(table["index"]) == [0, 1, 2]


@pytest.mark.parametrize(
    "operator",
    [
        lambda: MrsDeploySubmitBatchOperator(
            task_id="s", records=CARS, parallel_count="{% if 1 %}20{% endif %}", **SERVICE
        ),
        lambda: MrsDeployRepairFailedRowsOperator(
            task_id="r", destination="/tmp/x", parallel_count="{% if 1 %}5{% endif %}"
        ),
        lambda: MrsDeployCollectBatchOperator(
            task_id="c",
            batch_id="b1",
            destination="/tmp/x",
            output_format="{% if 1 %}csv{% endif %}",
            **SERVICE,
        ),
    ],
    ids=["submit", "repair", "collect"],
)
def test_a_jinja_statement_is_a_template_too(operator: Any) -> None:
    operator()  # checked once rendered, not refused as text


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (
            lambda: MrsDeploySubmitBatchOperator(
                task_id="s", records=CARS, deferrable="false", **SERVICE
            ),
            "deferrable",
        ),
        (
            lambda: MrsDeployBatchSensor(task_id="w", batch_id="b1", deferrable="false", **SERVICE),
            "deferrable",
        ),
        (
            lambda: MrsDeployRepairFailedRowsOperator(
                task_id="r", destination="/tmp/x", deferrable="no"
            ),
            "deferrable",
        ),
        (
            lambda: MrsDeploySubmitBatchOperator(
                task_id="s", records=CARS, wait_for_completion="false", **SERVICE
            ),
            "wait_for_completion",
        ),
        (
            lambda: MrsDeploySubmitBatchOperator(
                task_id="s",
                records_sql="select 1",
                sql_conn_id="db",
                sql_chunk_rows="1000",
                **SERVICE,
            ),
            "sql_chunk_rows",
        ),
        (
            lambda: MrsDeploySubmitBatchOperator(
                task_id="s", records_sql="select 1", sql_conn_id="db", sql_chunk_rows=0, **SERVICE
            ),
            "sql_chunk_rows",
        ),
    ],
    ids=[
        "submit-deferrable",
        "sensor-deferrable",
        "repair-deferrable",
        "wait",
        "chunk-text",
        "chunk-zero",
    ],
)
def test_text_for_a_flag_or_a_number_is_refused_when_the_dag_is_parsed(
    build: Any, named: str
) -> None:
    """``"false"`` counted as true: the task deferred, or waited in the worker."""
    with pytest.raises(MrsDeployConfigurationError, match=named):
        build()


@pytest.mark.parametrize("interval", [0, 0.0, -1])
def test_a_poll_interval_of_zero_is_refused(interval: float) -> None:
    """A 2 s wait polled the server 1,800 times."""
    with pytest.raises(
        ValueError, match="poll_interval must be a finite number of seconds above 0"
    ):
        MrsDeploySubmitBatchOperator(task_id="s", records=CARS, poll_interval=interval, **SERVICE)


def test_a_batch_id_template_that_found_no_xcom_is_named() -> None:
    """It rendered "None", which went to the server as a batch id (404 for batch None)."""
    with pytest.raises(MrsDeployBatchSetError, match=r"rendered as 'None'.*task_id"):
        to_batch_set("None", "mtService", "v1.0.0")


def test_rows_rendered_to_text_are_not_taken_for_a_path() -> None:
    """Was "cannot tell the format of ... from its suffix; pass records_format"."""
    with pytest.raises(MrsDeployRecordsError, match=r"records=upstream\.output"):
        load_records(str(CARS))


@pytest.mark.parametrize("interval", [0, 0.0])
def test_a_sensor_poke_interval_of_zero_is_refused_before_it_defers(interval: float) -> None:
    """Airflow takes 0; the trigger would then end the wait with an error when deferred."""
    with pytest.raises(ValueError, match="poke_interval must be a finite number of seconds above"):
        MrsDeployBatchSensor(task_id="w", batch_id="b1", poke_interval=interval, **SERVICE)
