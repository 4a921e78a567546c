"""Build the sdist and wheel, install the wheel into a fresh virtualenv next to Airflow, and check
that Airflow registers the provider.

    python scripts/check_package.py [--workdir DIR]

Steps, each failing with a message that says what is wrong:

1. ``python -m build --no-isolation`` builds the sdist, then the wheel from the sdist (so the
   sdist is proven complete). No isolation: the build uses this environment's setuptools, so
   nothing is downloaded.
2. The sdist and the wheel hold the package data (``mtcars.csv``), the licence, the
   ``apache_airflow_provider`` entry point and the version from ``airflow_provider.__version__``.
3. ``uv venv`` creates a fresh virtualenv (no system site-packages) and ``uv pip install``
   installs the wheel with only the dependencies it declares, pinned by
   ``requirements/lock.txt``: from uv's cache alone when it holds everything (``--offline``),
   else from the package registry (a cache filled by ``uv pip sync`` need not hold the index
   pages an install resolves against).
4. ``twine check --strict`` and ``check-wheel-contents`` find nothing to say about them.
5. From outside the checkout, ``airflow providers list`` must list ``airflow-provider-mrsdeploy``
   with that version, ``airflow providers hooks`` the ``mrsdeploy`` connection type, the package
   must import from the new virtualenv with its data file, and ``mrsdeploy-server --help`` must
   run.

The tests in ``tests/packaging/test_distribution.py`` run these same functions.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DISTRIBUTION = "airflow-provider-mrsdeploy"
PACKAGE = "airflow_provider"
PACKAGE_DATA = "airflow_provider/server/data/mtcars.csv"
CONN_TYPE = "mrsdeploy"
LOCK_FILE = REPO / "requirements" / "lock.txt"
#: Generous bounds for each step; a healthy run takes seconds.
BUILD_TIMEOUT = 300
INSTALL_TIMEOUT = 300
AIRFLOW_TIMEOUT = 180


class PackageCheckError(RuntimeError):
    """A packaging check failed; the message says which and why."""


@dataclass(frozen=True)
class Distributions:
    """The files ``python -m build`` produced."""

    sdist: Path
    wheel: Path


def source_version(repo: Path = REPO) -> str:
    """``__version__`` as written in ``airflow_provider/__init__.py``, read without importing."""
    tree = ast.parse((repo / PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__version__" for target in node.targets
        ):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
    raise PackageCheckError(f"no literal __version__ in {PACKAGE}/__init__.py")


def _run(
    command: list[str], *, timeout: float, what: str, cwd: Path, env: dict[str, str] | None = None
) -> str:
    """Run a command; return its stdout, or raise with the end of its output."""
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PackageCheckError(f"{what}: no result within {timeout:.0f}s: {command}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + "\n" + done.stderr).strip().splitlines()[-40:])
        raise PackageCheckError(f"{what} failed (exit {done.returncode}): {command}\n{tail}")
    return done.stdout


def build(outdir: Path, repo: Path = REPO) -> Distributions:
    """Build the sdist, then the wheel from it, into ``outdir`` without downloading anything."""
    outdir.mkdir(parents=True, exist_ok=True)
    _run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(outdir),
            str(repo),
        ],
        timeout=BUILD_TIMEOUT,
        what="python -m build",
        cwd=repo,
    )
    sdists = sorted(outdir.glob("*.tar.gz"))
    wheels = sorted(outdir.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        found = sorted(p.name for p in outdir.iterdir())
        raise PackageCheckError(f"expected one sdist and one wheel in {outdir}, found {found}")
    return Distributions(sdists[0], wheels[0])


def _metadata_version(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return None


def check_sdist(sdist: Path, version: str) -> None:
    """The sdist has the package data, the licence, the build configuration and the version."""
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        root = names[0].split("/", 1)[0]
        members = {name.split("/", 1)[1] for name in names if "/" in name}
        problems = [
            f"{required} is missing"
            for required in (PACKAGE_DATA, "LICENSE", "pyproject.toml", "PKG-INFO")
            if required not in members
        ]
        if "PKG-INFO" in members:
            pkg_info = archive.extractfile(f"{root}/PKG-INFO")
            text = pkg_info.read().decode("utf-8") if pkg_info else ""
            found = _metadata_version(text)
            if found != version:
                problems.append(f"PKG-INFO says version {found!r}, the source {version!r}")
    if root != f"airflow_provider_mrsdeploy-{version}":
        problems.append(f"top folder is {root!r}")
    if problems:
        raise PackageCheckError(f"sdist {sdist.name}: " + "; ".join(problems))


def check_wheel(wheel: Path, version: str) -> None:
    """The wheel has the package data, the licence, the provider entry point and the version."""
    dist_info = f"airflow_provider_mrsdeploy-{version}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        problems = [f"{PACKAGE_DATA} is missing"] if PACKAGE_DATA not in names else []
        if not any(n.startswith(f"{dist_info}/") and "LICENSE" in n for n in names):
            problems.append(f"no LICENSE in {dist_info}")
        if f"{dist_info}/METADATA" not in names:
            problems.append(f"no {dist_info}/METADATA (is the version {version!r}?)")
        else:
            found = _metadata_version(archive.read(f"{dist_info}/METADATA").decode("utf-8"))
            if found != version:
                problems.append(f"METADATA says version {found!r}, the source {version!r}")
        entry_points = f"{dist_info}/entry_points.txt"
        text = archive.read(entry_points).decode("utf-8") if entry_points in names else ""
        if "[apache_airflow_provider]" not in text or f"{PACKAGE}:get_provider_info" not in text:
            problems.append("no apache_airflow_provider entry point to get_provider_info")
    if problems:
        raise PackageCheckError(f"wheel {wheel.name}: " + "; ".join(problems))


def check_published_metadata(dists: Distributions) -> None:
    """``twine check --strict`` (the long description renders on the package index, the metadata
    is complete) and ``check-wheel-contents`` (no stray, duplicate or empty files in the wheel);
    any warning is a failure."""
    _run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists.sdist), str(dists.wheel)],
        timeout=BUILD_TIMEOUT,
        what="twine check --strict",
        cwd=dists.wheel.parent,
    )
    checker = Path(sys.executable).with_name("check-wheel-contents")
    _run(
        [str(checker), str(dists.wheel)],
        timeout=BUILD_TIMEOUT,
        what="check-wheel-contents",
        cwd=dists.wheel.parent,
    )


def wheel_metadata(wheel: Path) -> dict[str, list[str]]:
    """The wheel's ``METADATA`` headers, each with every value it has."""
    from email.parser import HeaderParser

    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = HeaderParser().parsestr(archive.read(name).decode("utf-8"))
    found: dict[str, list[str]] = {}
    for key, value in message.items():
        found.setdefault(key, []).append(value)
    return found


def find_uv() -> str:
    """The uv next to this interpreter (``make venv`` installs it), else one on the PATH."""
    beside = Path(sys.executable).with_name("uv")
    if beside.exists():
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        raise PackageCheckError("uv not found next to the interpreter or on PATH: run make venv")
    return found


def clean_env(airflow_home: Path) -> dict[str, str]:
    """This environment without Airflow settings, virtualenv or path tweaks; a new AIRFLOW_HOME."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k not in dropped}
    env["AIRFLOW_HOME"] = str(airflow_home)
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    return env


def install_fresh(wheel: Path, venv: Path, lock: Path = LOCK_FILE) -> Path:
    """A new virtualenv holding the wheel and only what it declares; return its ``bin`` folder.

    The cache is tried first, offline; what it lacks comes from the registry.
    """
    uv = find_uv()
    env = clean_env(venv.parent / "airflow-home")
    _run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        timeout=INSTALL_TIMEOUT,
        what="uv venv",
        cwd=venv.parent,
        env=env,
    )
    python = venv / "bin" / "python"
    install = [
        *(uv, "pip", "install", "--quiet", "--python", str(python)),
        *("--constraint", str(lock), str(wheel)),
    ]
    try:
        _run(
            [*install, "--offline"],
            timeout=INSTALL_TIMEOUT,
            what="uv pip install of the wheel from the cache",
            cwd=venv.parent,
            env=env,
        )
    except PackageCheckError:
        _run(
            install,
            timeout=INSTALL_TIMEOUT,
            what="uv pip install of the wheel",
            cwd=venv.parent,
            env=env,
        )
    return venv / "bin"


def check_registered(bin_dir: Path, version: str, workdir: Path) -> dict[str, object]:
    """Airflow in the fresh virtualenv lists the provider, its version and its connection type."""
    home = workdir / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    env = clean_env(home)

    def airflow(*args: str) -> list[dict[str, Any]]:
        out = _run(
            [str(bin_dir / "airflow"), *args, "--output", "json"],
            timeout=AIRFLOW_TIMEOUT,
            what=f"airflow {' '.join(args)}",
            cwd=workdir,
            env=env,
        )
        rows = json.loads(out)
        if not isinstance(rows, list):
            raise PackageCheckError(f"`airflow {' '.join(args)}` did not answer a JSON list")
        return [row for row in rows if isinstance(row, dict)]

    providers = airflow("providers", "list")
    ours = [p for p in providers if p.get("package_name") == DISTRIBUTION]
    if not ours:
        names = [p.get("package_name") for p in providers]
        raise PackageCheckError(f"`airflow providers list` does not list {DISTRIBUTION}: {names}")
    if ours[0].get("version") != version:
        raise PackageCheckError(
            f"`airflow providers list` shows {DISTRIBUTION} {ours[0].get('version')!r}, "
            f"the source says {version!r}"
        )
    hooks = airflow("providers", "hooks")
    conn_types = [h.get("connection_type") for h in hooks]
    if CONN_TYPE not in conn_types:
        raise PackageCheckError(f"`airflow providers hooks` has no {CONN_TYPE!r} connection type")
    probe = (
        "import json, airflow_provider\n"
        "from airflow_provider.sample_data import mtcars_csv_path\n"
        "from pathlib import Path\n"
        "print(json.dumps({'file': airflow_provider.__file__,"
        " 'version': airflow_provider.__version__,"
        " 'data': Path(mtcars_csv_path()).is_file()}))\n"
    )
    found = json.loads(
        _run(
            [str(bin_dir / "python"), "-c", probe],
            timeout=AIRFLOW_TIMEOUT,
            what="importing the installed package",
            cwd=workdir,
            env=env,
        )
    )
    venv = bin_dir.parent.resolve()
    if not Path(found["file"]).resolve().is_relative_to(venv):
        raise PackageCheckError(f"{PACKAGE} was imported from {found['file']}, not from {venv}")
    if not found["data"]:
        raise PackageCheckError("the installed package has no mtcars.csv")
    _run(
        [str(bin_dir / "mrsdeploy-server"), "--help"],
        timeout=AIRFLOW_TIMEOUT,
        what="mrsdeploy-server --help",
        cwd=workdir,
        env=env,
    )
    return {"provider": ours[0], "connection_type": CONN_TYPE, "module": found["file"]}


def check_all(workdir: Path) -> dict[str, object]:
    """Every step above, in order; return a short report."""
    version = source_version()
    dists = build(workdir / "dist")
    check_sdist(dists.sdist, version)
    check_wheel(dists.wheel, version)
    check_published_metadata(dists)
    bin_dir = install_fresh(dists.wheel, workdir / "venv")
    report = check_registered(bin_dir, version, workdir)
    return {"sdist": str(dists.sdist), "wheel": str(dists.wheel), **report}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: temporary)")
    args = parser.parse_args(argv)
    try:
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)
            report = check_all(args.workdir.resolve())
        else:
            with tempfile.TemporaryDirectory(prefix="mrsdeploy-package-") as tmp:
                report = check_all(Path(tmp))
    except PackageCheckError as exc:
        print(f"package check failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
