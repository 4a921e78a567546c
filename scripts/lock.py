"""Resolve the two locks of the project (``make lock``).

    python scripts/lock.py [--uv PATH]

``requirements/lock.txt``
    The project with every extra and the ``dev`` dependency group (``pyproject.toml``), at the
    newest versions that fit. The pins already in the file are kept unless a bound in
    ``pyproject.toml`` rules them out, so re-locking after a change moves only what it must.

``requirements/lock-airflow-min.txt``
    What ``make test-min`` runs: the project's own requirements and its extras' at their
    **lower bounds** (``--resolution lowest-direct``) on the oldest supported Airflow
    (``requirements/airflow-min.txt``, an override). The bounds a user may install are thereby
    the versions the suite runs on. The test tools of the ``dev`` group stay at their
    ``lock.txt`` pins: the oldest pytest or moto is not what this suite is about, and the two
    suites then differ only in what the provider's users may have. Re-resolved from scratch
    each time (``--upgrade``): an existing pin would otherwise be preferred over the lowest
    version.

uv resolves the group's reference to the project itself (``airflow-provider-mrsdeploy[...]``)
only when the project is among the inputs, so it is passed as an editable requirement on the
standard input and left out of both outputs (``--no-emit-package``). Both locks are resolved
for Python 3.11, the interpreter of the Makefile's virtualenvs.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = REPO / "pyproject.toml"
LOCK = REPO / "requirements" / "lock.txt"
MIN_LOCK = REPO / "requirements" / "lock-airflow-min.txt"
AIRFLOW_MIN = REPO / "requirements" / "airflow-min.txt"
GROUP = "dev"
PYTHON_VERSION = "3.11"
#: What the min lock's comments call the ``dev`` tool pins taken from ``lock.txt``.
TOOL_PINS_LABEL = "dev-tools-pinned-as-in-lock.txt"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)")
NAME = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)")
#: ``dev`` tools left out of the oldest-Airflow lock: ``make test-min`` builds no docs, checks no
#: distribution and drives no browser, and their own floors (mkdocs-material needs
#: requests>=2.33) would otherwise lift the provider's dependencies above its lower bounds.
MIN_LOCK_EXCLUDED = (
    "mkdocs-material",
    "mkdocstrings",
    "playwright",
    "twine",
    "check-wheel-contents",
)


def normalize(name: str) -> str:
    """The PEP 503 form of a distribution name (``Foo_Bar`` -> ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project() -> dict[str, object]:
    """The ``[project]`` table and the dependency groups of ``pyproject.toml``."""
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    return {"project": data["project"], "groups": data.get("dependency-groups", {})}


def project_input() -> str:
    """The project itself with every extra, as an editable requirement line."""
    table = project()["project"]
    assert isinstance(table, dict)
    extras = sorted(table.get("optional-dependencies", {}))
    return f"-e .[{','.join(extras)}]\n" if extras else "-e .\n"


def pins(lock: Path) -> dict[str, str]:
    """``{normalized name: version}`` of every ``name==version`` line of a lock file."""
    found: dict[str, str] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            found[normalize(match["name"])] = match["version"]
    return found


def dev_tools() -> list[str]:
    """The normalized names of the ``dev`` group's requirements, the project itself excluded."""
    table = project()
    own = normalize(str(table["project"]["name"]))  # type: ignore[index]
    groups = table["groups"]
    assert isinstance(groups, dict)
    names = []
    for requirement in groups[GROUP]:
        if not isinstance(requirement, str):
            continue  # an {include-group = ...} table
        match = NAME.match(requirement)
        if match and normalize(match["name"]) != own:
            names.append(normalize(match["name"]))
    return names


def tool_constraints(lock: Path = LOCK) -> str:
    """Constraint lines pinning each ``dev`` tool to its version in ``lock``."""
    locked = pins(lock)
    tools = [name for name in dev_tools() if name not in MIN_LOCK_EXCLUDED]
    missing = [name for name in tools if name not in locked]
    if missing:
        raise SystemExit(f"{lock.name} does not pin {missing}: run the main lock first")
    return "".join(f"{name}=={locked[name]}\n" for name in tools)


def compile_lock(uv: str, output: Path, extra_args: list[str]) -> None:
    """Run ``uv pip compile`` on the project (standard input) and the ``dev`` group."""
    table = project()["project"]
    assert isinstance(table, dict)
    command = [
        *(uv, "pip", "compile", "-", "--group", f"pyproject.toml:{GROUP}"),
        *("--python-version", PYTHON_VERSION, "--no-header", "--quiet"),
        *("--no-emit-package", str(table["name"])),
        *extra_args,
        *("-o", str(output.relative_to(REPO))),
    ]
    subprocess.run(command, input=project_input(), text=True, cwd=REPO, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_uv = Path(sys.executable).with_name("uv")
    parser.add_argument(
        "--uv", default=str(default_uv), help="the uv to run (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    compile_lock(args.uv, LOCK, [])
    with (
        tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="dev-tools-") as constraints,
        tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="excluded-") as excluded,
    ):
        constraints.write(tool_constraints())
        constraints.flush()
        excluded.write("".join(f"{name}\n" for name in MIN_LOCK_EXCLUDED))
        excluded.flush()
        compile_lock(
            args.uv,
            MIN_LOCK,
            [
                *("--resolution", "lowest-direct", "--upgrade"),
                *("--override", str(AIRFLOW_MIN.relative_to(REPO))),
                *("--constraint", constraints.name),
                *("--excludes", excluded.name),
            ],
        )
        # uv names the constraint file in its "via" comments: its random temporary name would
        # change those lines at every re-lock.
        text = MIN_LOCK.read_text()
        MIN_LOCK.write_text(text.replace(constraints.name, TOOL_PINS_LABEL))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
