"""The documentation site builds with ``mkdocs build --strict`` and shows what CI runs."""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.docs

REPO = Path(__file__).resolve().parents[2]

#: A page of the user guide for each task, and the class whose parameters it must describe.
TASK_PAGES = [
    ("operators/submit.md", "airflow_provider.operators.submit", "MrsDeploySubmitBatchOperator"),
    ("operators/sensor.md", "airflow_provider.sensors.batch", "MrsDeployBatchSensor"),
    ("operators/trigger.md", "airflow_provider.triggers.batch", "MrsDeployBatchTrigger"),
    ("operators/collect.md", "airflow_provider.operators.collect", "MrsDeployCollectBatchOperator"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once into a temporary folder (nothing is written into the checkout)."""
    site_dir = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(REPO / "mkdocs.yml"),
            "--site-dir",
            str(site_dir),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, (
        f"mkdocs build --strict failed (exit {result.returncode}):\n{result.stdout}\n"
        f"{result.stderr}"
    )
    return site_dir


def test_site_builds_with_every_page(site: Path) -> None:
    pages = [
        "index.html",
        "connection/index.html",
        "operators/index.html",
        "operators/submit/index.html",
        "operators/sensor/index.html",
        "operators/trigger/index.html",
        "operators/collect/index.html",
        "outputs/index.html",
        "examples/index.html",
        "reference-server/index.html",
        "compatibility/index.html",
        "r-to-airflow/index.html",
        "reliability/index.html",
        "benchmarks/index.html",
        "e2e/index.html",
        "troubleshooting/index.html",
        "changelog/index.html",
        "api/index.html",
    ]
    missing = [page for page in pages if not (site / page).is_file()]
    assert not missing, f"pages missing from the site: {missing}"


def test_examples_page_shows_the_example_dags(site: Path) -> None:
    html = (site / "examples" / "index.html").read_text(encoding="utf-8")
    assert 'class="filename">dags_examples/mrsdeploy_score_mtcars.py' in html, "no titled block"
    assert "airflow_provider.operators" in html, "the blocks show no imports"
    for text in ("mrsdeploy_score_mtcars", "mrsdeploy_submit_and_wait", "MrsDeployBatchSensor"):
        assert text in html, f"{text} is not on the examples page"


def test_api_reference_is_generated_from_docstrings(site: Path) -> None:
    expected = {
        "hooks": ["MrsDeployHook", "get_batch_status"],
        "operators": ["MrsDeploySubmitBatchOperator", "MrsDeployCollectBatchOperator"],
        "sensors": ["MrsDeployBatchSensor"],
        "triggers": ["MrsDeployBatchTrigger"],
        "api": ["MrsDeployBatchState", "BatchStatus"],
        "records": ["prepare_records"],
        "outputs": ["OutputWriter"],
        "server": ["create_app", "ReferenceServer", "ServiceContext"],
    }
    for page, names in expected.items():
        html = (site / "api" / page / "index.html").read_text(encoding="utf-8")
        absent = [name for name in names if name not in html]
        assert not absent, f"api/{page} does not document {absent}"


def test_site_fetches_nothing_from_the_network(site: Path) -> None:
    html = (site / "index.html").read_text(encoding="utf-8")
    for host in ("fonts.googleapis.com", "fonts.gstatic.com", "cdn.jsdelivr.net", "unpkg.com"):
        assert host not in html


@pytest.mark.parametrize(("page", "module", "name"), TASK_PAGES)
def test_task_page_describes_every_parameter(page: str, module: str, name: str) -> None:
    cls = getattr(importlib.import_module(module), name)
    skipped = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    parameters = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind not in skipped
    ]
    text = (REPO / "docs" / page).read_text(encoding="utf-8")
    missing = [p for p in parameters if f"`{p}`" not in text]
    assert not missing, f"docs/{page} does not describe {name} parameter(s) {missing}"


def test_snippet_sections_are_extracted_and_dedented(snippets: ModuleType) -> None:
    text = "x = 1\n# [START demo]\n    a = 1\n    b = 2\n# [END demo]\n"
    assert snippets.sections(text, "f.py") == {"demo": "a = 1\nb = 2"}


@pytest.mark.parametrize(
    "text",
    [
        "# [START demo]\na = 1\n",
        "a = 1\n# [END demo]\n",
        "# [START demo]\n# [END demo]\n# [START demo]\n# [END demo]\n",
    ],
    ids=["never-closed", "never-opened", "opened-twice"],
)
def test_broken_snippet_markers_stop_the_build(snippets: ModuleType, text: str) -> None:
    with pytest.raises(snippets.SnippetError):
        snippets.sections(text, "f.py")


def test_every_example_section_parses(snippets: ModuleType) -> None:
    found = {
        path.name: snippets.sections(path.read_text(encoding="utf-8"), path.name)
        for path in sorted((REPO / "dags_examples").glob("*.py"))
    }
    assert found["mrsdeploy_score_mtcars.py"], "the main example DAG has no marked section"


def test_connection_page_describes_every_extra() -> None:
    from airflow_provider.provider_info import CONN_FIELDS

    text = (REPO / "docs" / "connection.md").read_text(encoding="utf-8")
    missing = [name for name in CONN_FIELDS if f"`{name}`" not in text]
    assert not missing, f"docs/connection.md does not describe the extra(s) {missing}"
