"""Every error the provider raises lives in one module and derives from one base."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import airflow_provider.exceptions as exceptions
from airflow_provider.exceptions import MrsDeployError

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider"
#: Where exception classes may be defined: the one module, and the wire protocol's own errors
#: (kept dependency-free), which the one module re-exports.
HOMES = {PACKAGE / "exceptions.py", PACKAGE / "api" / "errors.py"}
#: Web apps whose errors end as HTTP answers and never reach a task: the reference server and
#: the batch status page of the Airflow UI.
WEB_APPS = {"server", "ui"}


def test_exception_classes_are_defined_only_in_the_exceptions_modules() -> None:
    elsewhere = []
    for path in PACKAGE.rglob("*.py"):
        if path in HOMES or WEB_APPS.intersection(path.relative_to(PACKAGE).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Exception")):
                elsewhere.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert elsewhere == []


def test_the_module_offers_every_error_and_all_derive_from_the_base() -> None:
    classes = [
        value
        for name, value in vars(exceptions).items()
        if inspect.isclass(value) and issubclass(value, BaseException)
    ]
    assert len(classes) >= 20
    assert sorted(cls.__name__ for cls in classes) == sorted(exceptions.__all__)
    assert all(issubclass(cls, MrsDeployError) for cls in classes)
