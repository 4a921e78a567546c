"""The locks match ``pyproject.toml``: the oldest-Airflow lock holds every lower bound exactly.

``make test-min`` runs on ``requirements/lock-airflow-min.txt``; a bound that the lock does not
pin is a version no suite ever ran, so a raised bound must come with a re-lock (``make lock``)
and a bound that something else lifts must be raised to what is really installed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
PYTHON = {"python_version": "3.11", "python_full_version": "3.11.0"}


def _pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _runtime_requirements() -> list[Requirement]:
    """The project's requirements and every extra's, those that apply on Python 3.11."""
    table = _pyproject()["project"]
    assert isinstance(table, dict)
    lines = list(table["dependencies"])
    for extra in table["optional-dependencies"].values():
        lines.extend(extra)
    found = [Requirement(line) for line in lines]
    return [r for r in found if r.marker is None or r.marker.evaluate(PYTHON)]


def lower_bound(requirement: Requirement) -> Version | None:
    """The version of the ``>=`` clause, if any."""
    bounds = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    return max(bounds) if bounds else None


def unpinned_bounds(requirements: list[Requirement], locked: dict[str, str]) -> list[str]:
    """Each requirement whose lower bound is not the locked version, said as ``name: why``."""
    problems = []
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        bound = lower_bound(requirement)
        version = locked.get(name)
        if version is None:
            problems.append(f"{name}: not in the lock")
        elif bound is None:
            problems.append(f"{name}: no lower bound")
        elif Version(version) != bound:
            problems.append(f"{name}: bound {bound}, locked {version}")
    return problems


def test_the_min_lock_pins_every_lower_bound(lock_script: ModuleType) -> None:
    locked = lock_script.pins(REPO / "requirements" / "lock-airflow-min.txt")
    overrides = lock_script.pins(REPO / "requirements" / "airflow-min.txt")
    requirements = [
        r for r in _runtime_requirements() if lock_script.normalize(r.name) not in overrides
    ]
    assert requirements, "pyproject.toml declares no requirement"
    problems = unpinned_bounds(requirements, locked)
    assert not problems, (
        "requirements/lock-airflow-min.txt does not run the lower bounds (make lock, or raise "
        f"the bound to what is installed): {problems}"
    )
    for name, version in overrides.items():
        assert locked.get(name) == version, f"{name} is not the oldest supported ({version})"


def test_the_main_lock_satisfies_every_requirement(lock_script: ModuleType) -> None:
    locked = lock_script.pins(REPO / "requirements" / "lock.txt")
    groups = _pyproject()["dependency-groups"]
    assert isinstance(groups, dict)
    own = canonicalize_name(str(_pyproject()["project"]["name"]))  # type: ignore[index]
    tools = [Requirement(line) for line in groups["dev"] if isinstance(line, str)]
    stale = [
        f"{r.name}{r.specifier} (locked {locked.get(canonicalize_name(r.name))})"
        for r in [*_runtime_requirements(), *tools]
        if canonicalize_name(r.name) != own
        and not r.specifier.contains(locked.get(canonicalize_name(r.name), "0"), prereleases=True)
    ]
    assert not stale, f"requirements/lock.txt is older than pyproject.toml (make lock): {stale}"


def test_the_dev_group_brings_every_extra() -> None:
    """The ``dev`` group installs the project with all its extras; the metadata has no ``dev``."""
    table = _pyproject()["project"]
    assert isinstance(table, dict)
    assert "dev" not in table["optional-dependencies"], "development tools must not be an extra"
    groups = _pyproject()["dependency-groups"]
    assert isinstance(groups, dict)
    own = [
        Requirement(line)
        for line in groups["dev"]
        if isinstance(line, str) and canonicalize_name(Requirement(line).name) == table["name"]
    ]
    assert own, "the dev group does not install the project itself"
    assert own[0].extras == set(table["optional-dependencies"])


def test_a_bound_the_lock_does_not_hold_is_reported() -> None:
    """The comparison can fail: a raised bound, a lifted version and a missing pin are named."""
    requirements = [Requirement("pandas>=2.3"), Requirement("numpy>=2.2"), Requirement("x>=1")]
    problems = unpinned_bounds(requirements, {"pandas": "2.3.0", "numpy": "2.2.5"})
    assert problems == ["numpy: bound 2.2, locked 2.2.5", "x: not in the lock"]
