"""The docs pages show the example DAGs as they are, and each block is a DAG file on its own.

``scripts/sync_doc_snippets.py`` writes the blocks; these tests fail when a page was not
re-synced after a DAG changed, when a block's reference is broken, and when a block does not
load into Airflow by itself (an import left out of the marked section).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.docs

REPO = Path(__file__).resolve().parents[2]


def _all_snippets(snippets: ModuleType) -> list[object]:
    found = []
    for page in snippets.pages(REPO):
        where = page.relative_to(REPO).as_posix()
        found.extend(snippets.page_snippets(page.read_text(encoding="utf-8"), where, REPO))
    return found


def test_every_page_block_is_its_dag_section(snippets: ModuleType) -> None:
    problems = snippets.problems(REPO)
    assert not problems, "run python scripts/sync_doc_snippets.py:\n" + "\n".join(problems)


def test_the_pages_hold_the_code_not_a_placeholder(snippets: ModuleType) -> None:
    """Read in the repository, each snippet comment is followed by the code itself."""
    found = _all_snippets(snippets)
    pages = {s.page for s in found}
    assert {"docs/examples.md", "docs/index.md", "docs/r-to-airflow.md"} <= pages
    assert all(s.shown for s in found), [f"{s.page}:{s.line}" for s in found if not s.shown]


def test_a_stale_block_is_found_and_rewritten(snippets: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "dags_examples").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "dags_examples" / "d.py").write_text(
        "# [START s]\nimport os\n\n    \nx = 1\n# [END s]\n", encoding="utf-8"
    )
    page = tmp_path / "docs" / "p.md"
    page.write_text(
        "Intro\n\n  <!-- dag-snippet: dags_examples/d.py s -->\n\n  ```python\n  x = 0\n  ```\n",
        encoding="utf-8",
    )
    assert snippets.problems(tmp_path) == ["docs/p.md: out of date: dags_examples/d.py s"]
    fixed = snippets.synced(page.read_text(encoding="utf-8"), "docs/p.md", tmp_path)
    assert fixed == (
        "Intro\n\n  <!-- dag-snippet: dags_examples/d.py s -->\n\n"
        '  ```python title="dags_examples/d.py"\n  import os\n\n\n  x = 1\n  ```\n'
    )
    page.write_text(fixed, encoding="utf-8")
    assert snippets.problems(tmp_path) == []
    assert snippets.synced(fixed, "docs/p.md", tmp_path) == fixed


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("<!-- dag-snippet: dags_examples/gone.py s -->\n", "gone.py does not exist"),
        ("<!-- dag-snippet: dags_examples/d.py other -->\n", "has no section [START other]"),
        ("<!-- dag-snippet: dags_examples/d.py s -->\n```python\nx = 1\n", "never closed"),
    ],
    ids=["missing-file", "missing-marker", "unclosed-block"],
)
def test_a_broken_reference_is_reported(
    snippets: ModuleType, tmp_path: Path, page: str, expected: str
) -> None:
    (tmp_path / "dags_examples").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "dags_examples" / "d.py").write_text("# [START s]\nx = 1\n# [END s]\n")
    (tmp_path / "docs" / "p.md").write_text(page, encoding="utf-8")
    found = snippets.problems(tmp_path)
    assert any(expected in problem for problem in found), found


def test_an_undocumented_section_is_reported(snippets: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "dags_examples").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "dags_examples" / "d.py").write_text("# [START s]\nx = 1\n# [END s]\n")
    (tmp_path / "docs" / "p.md").write_text("No code here.\n", encoding="utf-8")
    assert snippets.problems(tmp_path) == ["not shown on any page: dags_examples/d.py s"]


def _load(folder: Path) -> tuple[dict[str, str], list[str]]:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef,attr-defined,unused-ignore]

    bag = DagBag(dag_folder=str(folder), safe_mode=False)
    ours = [dag_id for dag_id, dag in bag.dags.items() if Path(dag.fileloc).parent == folder]
    return dict(bag.import_errors), ours


def test_each_block_loads_alone_as_a_dag_file(snippets: ModuleType, tmp_path: Path) -> None:
    """Pasted alone into a DAGs folder, each block parses with no import error."""
    blocks = {(s.path, s.name): s.shown for s in _all_snippets(snippets)}
    assert blocks
    for (path, name), code in sorted(blocks.items()):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.py").write_text(f"{code}\n", encoding="utf-8")
        errors, dag_ids = _load(folder)
        assert not errors, f"{path} [{name}] does not load on its own: {errors}"
        assert dag_ids, f"{path} [{name}] defines no DAG"


def test_a_block_without_its_imports_does_not_load(snippets: ModuleType, tmp_path: Path) -> None:
    """The load check can fail: the main example without its import lines is refused."""
    block = next(s.shown for s in _all_snippets(snippets) if s.name == "score_mtcars")
    body = "\n".join(line for line in block.splitlines() if not line.startswith(("from", "import")))
    (tmp_path / "cut.py").write_text(body + "\n", encoding="utf-8")
    errors, _ = _load(tmp_path)
    assert errors, "a block without imports loaded"
