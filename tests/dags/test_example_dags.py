"""The example DAGs: they import cleanly and run end to end with ``dag.test()``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_provider.sample_data import mtcars_csv_path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "dags_examples"


def logistic_answers(hp: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """P(am = 1 | hp, wt) from a logistic regression fitted here by Newton's method."""
    cars = pd.read_csv(mtcars_csv_path())
    x = np.column_stack([np.ones(len(cars)), cars["hp"], cars["wt"]])
    y = cars["am"].to_numpy(dtype=float)
    beta = np.zeros(3)
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ beta))
        step = np.linalg.solve(x.T @ (x * (p * (1 - p))[:, None]), x.T @ (y - p))
        beta += step
        if np.abs(step).max() < 1e-12:
            break
    return 1 / (1 + np.exp(-(beta[0] + beta[1] * hp + beta[2] * wt)))


@pytest.fixture(scope="module")
def airflow_db() -> None:
    """The worker's throwaway metadata database (SQLite), migrated once."""
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def dagbag(airflow_db: None) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(dag_folder=str(EXAMPLES))


def test_examples_import_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert {
        "mrsdeploy_score_mtcars",
        "mrsdeploy_submit_and_wait",
        "mrsdeploy_scores_report",
        "mrsdeploy_repair_failed_rows",
    } <= set(dagbag.dag_ids)


def test_model_answer_matches_the_documented_figure() -> None:
    assert logistic_answers(np.array([120.0]), np.array([2.8]))[0] == pytest.approx(
        0.6418125, abs=1e-6
    )


def check_files(destination: Path, manifest: dict[str, Any]) -> None:
    for entry in manifest["files"]:
        content = (destination / entry["path"]).read_bytes()
        assert len(content) == entry["size"]
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]


def test_score_mtcars_dag(dagbag: Any, mrsdeploy_conn: str, tmp_path: Path) -> None:
    dag = dagbag.get_dag("mrsdeploy_score_mtcars")
    run = dag.test(
        logical_date=datetime(2026, 3, 1, tzinfo=UTC),
        run_conf={"destination": str(tmp_path)},
    )
    assert run.state == "success"
    destination = tmp_path / "mtcars" / "2026-03-01"
    manifest = json.loads((destination / "manifest.json").read_text())
    table = pd.read_parquet(destination / "outputs.parquet")
    cars = pd.read_csv(mtcars_csv_path())
    assert list(table["index"]) == list(range(32))
    assert table["success"].all()
    expected = logistic_answers(cars["hp"].to_numpy(float), cars["wt"].to_numpy(float))
    np.testing.assert_allclose(table["answer"].to_numpy(float), expected, atol=1e-6)
    assert manifest["counts"]["rows"] == 32 and manifest["counts"]["failed_rows"] == 0
    assert {entry["index"] for entry in manifest["files"]} == set(range(32))
    check_files(destination, manifest)
    check_asset_event_and_report(dagbag, destination)


def check_asset_event_and_report(dagbag: Any, destination: Path) -> None:
    """Collect's asset event says where the outputs are; the downstream DAG's task reads it."""
    from types import SimpleNamespace

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.sdk import Asset
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "mrsdeploy_scores_mtcars")
        ).all()
        extras = [row[0] for row in rows]
    extra = next(e for e in extras if e["destination"].rstrip("/") == str(destination))
    assert extra["rows"] == 32 and extra["manifest"].endswith("manifest.json")
    report = dagbag.get_dag("mrsdeploy_scores_report").get_task("report").python_callable

    class TriggeringEvents:
        """Airflow's accessor shape: indexed by asset, truthy when it holds events."""

        def __getitem__(self, asset: Asset) -> list[SimpleNamespace]:
            return [SimpleNamespace(extra=extra)] if asset.name == "mrsdeploy_scores_mtcars" else []

        def __len__(self) -> int:
            return 1

    (summary,) = report(triggering_asset_events=TriggeringEvents())
    assert summary["rows"] == 32 and summary["failed_rows"] == 0


def test_submit_and_wait_dag(dagbag: Any, mrsdeploy_conn: str, tmp_path: Path) -> None:
    dag = dagbag.get_dag("mrsdeploy_submit_and_wait")
    run = dag.test(run_conf={"destination": str(tmp_path)})
    assert run.state == "success"
    (destination,) = (tmp_path / "submit_and_wait").iterdir()
    table = pd.read_csv(destination / "outputs.csv")
    assert list(table["input_model"])[:2] == ["Mazda RX4", "Datsun 710"]
    expected = logistic_answers(
        table["input_hp"].to_numpy(float), table["input_wt"].to_numpy(float)
    )
    np.testing.assert_allclose(table["answer"].to_numpy(float), expected, atol=1e-6)
    check_files(destination, json.loads((destination / "manifest.json").read_text()))


def test_score_in_chunks_dag(dagbag: Any, mrsdeploy_conn: str, tmp_path: Path) -> None:
    dag = dagbag.get_dag("mrsdeploy_score_in_chunks")
    run = dag.test(
        logical_date=datetime(2026, 4, 1, tzinfo=UTC),
        run_conf={"destination": str(tmp_path), "chunk_rows": 10},
    )
    assert run.state == "success"
    chunks = sorted((tmp_path / "chunks" / "2026-04-01").glob("chunk=*"))
    assert [c.name for c in chunks] == [f"chunk={i:04d}" for i in range(4)]  # 32 rows by 10
    tables = [pd.read_parquet(c / "outputs.parquet") for c in chunks]
    assert [len(t) for t in tables] == [10, 10, 10, 2]
    answers = np.concatenate([t["answer"].to_numpy(float) for t in tables])
    cars = pd.read_csv(mtcars_csv_path())
    expected = logistic_answers(cars["hp"].to_numpy(float), cars["wt"].to_numpy(float))
    np.testing.assert_allclose(answers, expected, atol=1e-6)
    batch_ids = {json.loads((c / "manifest.json").read_text())["batch_ids"][0] for c in chunks}
    assert len(batch_ids) == 4


def manifests(root: Path) -> dict[str, str]:
    """Every manifest under ``root`` and its text: a partition that changes shows here."""
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("manifest.json"))}


def test_examples_run_without_a_logical_date(
    dagbag: Any, mrsdeploy_conn: str, tmp_path: Path
) -> None:
    """Airflow 3 triggers manual and API runs without a logical date: no ``ds`` to render.

    Each example lands its outputs under the day the run was triggered for, and a re-run of
    one example never touches another's outputs under the same root.
    """
    conf = {"destination": str(tmp_path)}
    for dag_id in ("mrsdeploy_score_in_chunks", "mrsdeploy_score_mtcars"):
        run = dagbag.get_dag(dag_id).test(logical_date=None, run_conf=conf)
        assert run.state == "success", dag_id
        assert run.logical_date is None
    day = run.run_after.strftime("%Y-%m-%d")
    table = pd.read_parquet(tmp_path / "mtcars" / day / "outputs.parquet")
    assert len(table) == 32 and table["success"].all()
    chunks = sorted((tmp_path / "chunks" / day).glob("chunk=*"))
    assert len(chunks) == 4
    before = manifests(tmp_path / "chunks")
    run = dagbag.get_dag("mrsdeploy_score_mtcars").test(logical_date=None, run_conf=conf)
    assert run.state == "success"
    assert manifests(tmp_path / "chunks") == before
    for chunk in chunks:
        check_files(chunk, json.loads((chunk / "manifest.json").read_text()))


def test_repair_failed_rows_dag(dagbag: Any, mrsdeploy_conn: str, tmp_path: Path) -> None:
    """Transient failures injected into rows 3 and 11 of both batches are repaired: 32 of 32."""
    dag = dagbag.get_dag("mrsdeploy_repair_failed_rows")
    run = dag.test(
        logical_date=datetime(2026, 5, 1, tzinfo=UTC),
        run_conf={"destination": str(tmp_path)},
    )
    assert run.state == "success"
    destination = tmp_path / "repaired" / "2026-05-01"
    manifest = json.loads((destination / "manifest.json").read_text())
    table = pd.read_parquet(destination / "outputs.parquet")
    assert list(table["index"]) == list(range(32)) and table["success"].all()
    cars = pd.read_csv(mtcars_csv_path())
    expected = logistic_answers(cars["hp"].to_numpy(float), cars["wt"].to_numpy(float))
    np.testing.assert_allclose(table["answer"].to_numpy(float), expected, atol=1e-6)
    assert list(table["input_model"]) == list(cars["model"])
    assert manifest["counts"] == {**manifest["counts"], "rows": 32, "failed_rows": 0}
    assert manifest["failed_row_indexes"] == []
    (repair,) = manifest["repairs"]
    assert repair["attempt"] == 1 and repair["rows"] == [3, 11, 19, 27]
    assert repair["still_failed"] == []
    # The repair batch is recorded with its row map, after the two batches it repairs.
    base, repaired = manifest["batches"][:2], manifest["batches"][2:]
    assert [(b["first_row"], b["row_count"]) for b in base] == [(0, 16), (16, 16)]
    assert [b["rows"] for b in repaired] == [[3, 11, 19, 27]]
    assert {entry["index"] for entry in manifest["files"]} == set(range(32))
    check_files(destination, manifest)
    summary = run.get_task_instance("check").xcom_pull(task_ids="check")
    assert summary == "32 of 32 rows successful"
