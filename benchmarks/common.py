"""Helpers shared by the benchmark scripts: processes, Airflow environment, reporting."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COMPAT_PYTHON = REPO / ".venv-compat" / "bin" / "python"
_LISTENING = re.compile(r"listening on (http://\S+)")


def parse_args(description: str, extra: Sequence[tuple[str, dict[str, Any]]] = ()) -> Any:
    """``--quick`` (smaller sizes) plus any script-specific options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    for flag, options in extra:
        parser.add_argument(flag, **options)
    return parser.parse_args()


def ratio(name: str, value: float) -> None:
    """The last line of a measure: ``RATIO <name> <value>``."""
    print(f"RATIO {name} {value:.3f}", flush=True)


def say(text: str) -> None:
    """A figure line, flushed at once (scripts run under ``run_all``)."""
    print(text, flush=True)


def mib(size: float) -> str:
    """Bytes as MiB with one decimal."""
    return f"{size / 2**20:.1f} MiB"


def env_with_repo(**extra: str) -> dict[str, str]:
    """The environment with the repository root importable (benchmark services, helpers)."""
    env = dict(os.environ)
    paths = [str(REPO), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


def airflow_home() -> Path:
    """Point Airflow at a throwaway home (SQLite) before anything imports it."""
    home = Path(tempfile.mkdtemp(prefix="mrsdeploy-bench-airflow-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    return home


def connection_env(url: str, password: str) -> str:
    """The ``AIRFLOW_CONN_MRSDEPLOY_DEFAULT`` value for a server URL."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return json.dumps(
        {
            "conn_type": "mrsdeploy",
            "host": host,
            "port": int(port),
            "login": "admin",
            "password": password,
        }
    )


def without_trust_env(conn: str) -> str:
    """A connection's ``AIRFLOW_CONN_...`` JSON with the extra ``trust_env: false``: aiohttp
    and requests then read no proxy variables or ``.netrc`` for its requests."""
    parsed = json.loads(conn)
    parsed["extra"] = {**parsed.get("extra", {}), "trust_env": False}
    return json.dumps(parsed)


def load_average() -> str:
    """The machine's 1-minute load average (what else runs shows in the CPU figures too)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "unknown"


@contextmanager
def reference_server(workdir: Path, *extra_args: str) -> Iterator[Any]:
    """The reference server with the benchmark services, stopped on exit."""
    from airflow_provider.server.process import ReferenceServer
    from benchmarks.services import write_config

    config = write_config(workdir / "services.json")
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env_with_repo()["PYTHONPATH"]
    try:
        server = ReferenceServer(
            workdir / "server", extra_args=("--services-config", str(config), *extra_args)
        )
    finally:
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def process_with_url(command: Sequence[str]) -> Iterator[str]:
    """Start a process that prints ``listening on <url>``; yield the URL; stop it on exit."""
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env_with_repo(PYTHONUNBUFFERED="1"),
        cwd=REPO,
    )
    found: list[str] = []
    ready = threading.Event()
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            match = _LISTENING.search(line)
            if match and not ready.is_set():
                found.append(match.group(1))
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(30):
            raise RuntimeError(f"{command[0]} did not start:\n{''.join(output)}")
        yield found[0]
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def run_child(command: Sequence[str], timeout: float = 1800, **env: str) -> dict[str, Any]:
    """Run a measuring child process; its last stdout line is a JSON report."""
    done = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        env=env_with_repo(**env),
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n{done.stdout}\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_logged(
    module: str, args: Sequence[str], log_path: Path, report_path: Path, **env: str
) -> dict[str, Any]:
    """Run ``python -m module *args`` with its output in ``log_path``; return the JSON report it
    wrote to ``report_path``, or fail naming the log."""
    with log_path.open("w") as log:
        done = subprocess.run(
            [python(), "-m", module, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env_with_repo(**env),
            check=False,
        )
    if done.returncode != 0 or not report_path.exists():
        raise RuntimeError(f"{module} {' '.join(args[:2])} failed; see {log_path}")
    return dict(json.loads(report_path.read_text()))


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def versions() -> dict[str, str]:
    """Versions of the libraries on the measured paths."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in (
        "apache-airflow",
        "pandas",
        "numpy",
        "pyarrow",
        "msgspec",
        "requests",
        "aiohttp",
        "fastapi",
        "uvicorn",
        "uvloop",
        "httptools",
    ):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


class Stopwatch:
    """Wall and CPU time of a block: ``with Stopwatch() as t: ...; t.wall, t.cpu``."""

    def __enter__(self) -> Stopwatch:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def python() -> str:
    """This interpreter (the project's virtualenv)."""
    return sys.executable
