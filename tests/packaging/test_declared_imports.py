"""Every third-party import of the package is declared in ``pyproject.toml``.

The walk lives in ``scripts/check_imports.py``; these tests run it on the package, then on small
packages written for the purpose, so each rule is seen to refuse what it must.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return package


def _declared(check_imports: ModuleType, core: set[str], **extras: set[str]) -> object:
    return check_imports.Declared(
        core=frozenset(core), extras={k: frozenset(v) for k, v in extras.items()}
    )


def test_the_package_declares_every_import(check_imports: ModuleType) -> None:
    problems = check_imports.findings(REPO / "airflow_provider", check_imports.declared())
    assert not problems, "undeclared imports (add them to pyproject.toml):\n" + "\n".join(problems)


def test_the_named_direct_imports_are_declared(check_imports: ModuleType) -> None:
    """The issue's list: each is imported by the package and is a core requirement."""
    core = check_imports.declared().core
    for name in ("numpy", "fsspec", "urllib3", "multidict", "fastapi"):
        assert name in core, name
    assert "apache-airflow-providers-common-sql" in core
    assert "apache-airflow-providers-common-compat" in core


def test_an_undeclared_module_level_import_is_reported(
    check_imports: ModuleType, tmp_path: Path
) -> None:
    package = _package(tmp_path, {"a.py": "import yaml\nimport requests\n"})
    problems = check_imports.findings(package, _declared(check_imports, {"requests"}))
    assert len(problems) == 1 and "pkg/a.py:1: yaml (pyyaml) is not declared" in problems[0]


def test_an_extra_only_library_must_not_be_imported_at_module_level(
    check_imports: ModuleType, tmp_path: Path
) -> None:
    package = _package(
        tmp_path,
        {
            "core.py": "import fastapi\n",
            "lazy.py": "def f():\n    import fastapi\n",
            "guarded.py": "try:\n    import fastapi\nexcept ImportError:\n    fastapi = None\n",
            "server/app.py": "import fastapi\n",
        },
    )
    declared = _declared(check_imports, set(), server={"fastapi"})
    problems = check_imports.findings(package, declared)
    assert problems == [
        "pkg/core.py:1: fastapi (fastapi) comes only with the extra(s) server; import it inside "
        "the function that needs it, or under try/except ImportError"
    ]


def test_an_extra_only_library_outside_its_area_is_reported(
    check_imports: ModuleType, tmp_path: Path
) -> None:
    """``lineage/`` belongs to ``openlineage``: the ``server`` extra does not satisfy it."""
    package = _package(tmp_path, {"lineage/facets.py": "import fastapi\n"})
    problems = check_imports.findings(package, _declared(check_imports, set(), server={"fastapi"}))
    assert len(problems) == 1 and "comes only with the extra(s) server" in problems[0]


def test_a_namespace_package_maps_to_the_distribution_that_installed_the_module(
    check_imports: ModuleType, tmp_path: Path
) -> None:
    """``airflow.sdk`` comes with Airflow; ``airflow.providers.common.sql`` does not."""
    package = _package(
        tmp_path,
        {
            "a.py": (
                "from airflow.sdk import BaseHook\nfrom airflow.providers.common.sql import hooks\n"
            )
        },
    )
    assert check_imports.distribution_of("airflow.sdk") == "apache-airflow-task-sdk"
    declared = check_imports.Declared(
        core=frozenset({"apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk"}),
        extras={},
    )
    problems = check_imports.findings(package, declared)
    assert len(problems) == 1
    assert "airflow.providers.common.sql (apache-airflow-providers-common-sql)" in problems[0]


def test_a_meta_package_covers_what_it_requires(check_imports: ModuleType, tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["apache-airflow>=3.1"]\n', encoding="utf-8"
    )
    core = check_imports.declared(pyproject).core
    assert {"apache-airflow-core", "apache-airflow-task-sdk"} <= core


def test_a_missing_fallback_must_still_name_a_declared_distribution(
    check_imports: ModuleType, tmp_path: Path
) -> None:
    source = """\
        import sys
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import not_installed_for_types
        if sys.version_info >= (3, 11):
            from asyncio import timeout
        else:
            from async_timeout import timeout
        try:
            import not_installed_anywhere
        except ImportError:
            pass
        """
    package = _package(tmp_path, {"a.py": source})
    on_310 = check_imports.Declared(
        core=frozenset({"async-timeout"}), extras={}, oldest_python=(3, 10)
    )
    problems = check_imports.findings(package, on_310)
    assert problems == ["pkg/a.py:10: not_installed_anywhere is not installed and not declared"]
    on_310 = check_imports.Declared(core=frozenset(), extras={}, oldest_python=(3, 10))
    problems = check_imports.findings(package, on_310)
    assert problems[0].startswith("pkg/a.py:8: async_timeout")
    assert problems[0].endswith("not declared")
    # From 3.11 on, the else branch never runs: nothing to declare for it.
    problems = check_imports.findings(package, _declared(check_imports, set()))
    assert problems == ["pkg/a.py:10: not_installed_anywhere is not installed and not declared"]


def test_form_libraries_that_airflow_brings_are_accepted_only_when_optional(
    check_imports: ModuleType, tmp_path: Path
) -> None:
    package = _package(
        tmp_path,
        {"form.py": "def widgets():\n    import wtforms\n", "eager.py": "import wtforms\n"},
    )
    problems = check_imports.findings(package, _declared(check_imports, set()))
    assert len(problems) == 1 and problems[0].startswith("pkg/eager.py:1: wtforms")
