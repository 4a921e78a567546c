"""The wire protocol imports nothing but the standard library, msgspec and itself.

Like h11, ``airflow_provider.api`` is the protocol without a framework: any client, test or
tool can use it without Airflow, an HTTP library or an event loop. Each module is imported in
a fresh interpreter, where nothing was imported before, and every module that import loaded is
checked: importing ``airflow`` or ``requests`` from the protocol, even indirectly, fails here.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
API = REPO / "airflow_provider" / "api"

#: Prints, as JSON, the modules that importing ``sys.argv[1]`` loaded and the protocol may not
#: use. msgspec is imported first and everything it loads is its own business.
PROBE = """
import importlib, json, sys

before = set(sys.modules)
import msgspec

brought_by_msgspec = set(sys.modules) - before
importlib.import_module(sys.argv[1])


def allowed(name):
    top = name.partition(".")[0]
    return (
        top in sys.stdlib_module_names
        or top == "msgspec"
        or name in ("airflow_provider", "airflow_provider.api", "airflow_provider.safe_text")
        or name.startswith("airflow_provider.api.")
    )


loaded = set(sys.modules) - before - brought_by_msgspec
print(json.dumps(sorted(name for name in loaded if not allowed(name))))
"""


def api_modules() -> list[str]:
    """Every module of the protocol package, found on disk (a new module is checked too)."""
    found = pkgutil.walk_packages([str(API)], prefix="airflow_provider.api.")
    return ["airflow_provider.api", *sorted(module.name for module in found)]


def outside_imports(module: str) -> list[str]:
    """What importing ``module`` in a fresh interpreter loaded that the protocol may not use."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, f"importing {module} failed:\n{done.stderr}"
    found: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_the_protocol_modules_are_all_found() -> None:
    modules = api_modules()
    for name in ("errors", "auth_flow", "retry", "limits", "resume"):
        assert f"airflow_provider.api.{name}" in modules


@pytest.mark.parametrize("module", api_modules())
def test_module_imports_only_the_standard_library_and_msgspec(module: str) -> None:
    outside = outside_imports(module)
    packages = sorted({name.partition(".")[0] for name in outside})
    assert not outside, f"importing {module} loads {packages}"


@pytest.mark.parametrize(
    ("module", "reported"),
    [
        ("requests", "requests"),
        # Standard library only, but outside the protocol: still reported.
        ("airflow_provider.waiting.deadlines", "airflow_provider.waiting.deadlines"),
    ],
)
def test_the_probe_reports_modules_the_protocol_may_not_use(module: str, reported: str) -> None:
    assert reported in outside_imports(module)
