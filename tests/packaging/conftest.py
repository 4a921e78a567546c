"""Markers of the documentation and packaging checks.

This folder has no ``__init__.py`` on purpose: as a package named ``packaging`` it would shadow
the ``packaging`` library for everything else in the test session.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docs: builds the documentation site (mkdocs --strict)")
    config.addinivalue_line(
        "markers", "packaging: builds the sdist and wheel and installs them in a fresh venv"
    )


def load_module(name: str, path: Path) -> ModuleType:
    """Import a file that is not on ``sys.path`` (a script, an MkDocs hook) as ``name``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def snippets() -> ModuleType:
    """``scripts/sync_doc_snippets.py``: the docs' code blocks from the example DAGs' sections."""
    return load_module("sync_doc_snippets", REPO / "scripts" / "sync_doc_snippets.py")


@pytest.fixture(scope="session")
def check_package() -> ModuleType:
    """``scripts/check_package.py``: the packaging checks, shared with the command line."""
    return load_module("check_package", REPO / "scripts" / "check_package.py")


@pytest.fixture(scope="session")
def lock_script() -> ModuleType:
    """``scripts/lock.py``: how ``make lock`` resolves the two locks."""
    return load_module("lock_script", REPO / "scripts" / "lock.py")


@pytest.fixture(scope="session")
def check_imports() -> ModuleType:
    """``scripts/check_imports.py``: every third-party import of the package is declared."""
    return load_module("check_imports", REPO / "scripts" / "check_imports.py")
