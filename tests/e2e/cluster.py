"""A real Airflow deployment on loopback for end-to-end tests.

Four processes, as in production: ``airflow api-server`` (the REST API and, in Airflow 3, the
execution API the task workers talk to), ``airflow scheduler`` (with the LocalExecutor, whose
workers run the tasks), ``airflow dag-processor`` and ``airflow triggerer``. They share a
throwaway ``AIRFLOW_HOME`` with a SQLite metadata database (Airflow 3 runs the LocalExecutor on
SQLite), a DAGs folder of copied files and settings tuned so runs start within seconds. Each
process has its own log file and process group; every wait is bounded and a timeout reports the
end of every log.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psutil
import requests

from tests.e2e.airflow_api import AirflowApi, AirflowApiError
from tests.e2e.processes import ManagedProcess, kill_processes, marked_processes, wait_gone
from tests.e2e.trigger_logs import JSON_LOGS, fired_in_output, merged_records, trigger_files

T = TypeVar("T")

COMPONENTS = ("api-server", "dag-processor", "scheduler", "triggerer")
MARKER = "MRSDEPLOY_E2E_CLUSTER"
MIGRATE_TIMEOUT = 180.0
START_TIMEOUT = 180.0
POLL_INTERVAL = 1.0
TERMINAL_RUN_STATES = ("success", "failed")
TERMINAL_TASK_STATES = ("success", "failed", "skipped", "upstream_failed", "removed")


class ClusterError(AssertionError):
    """A wait timed out, a component died, or a run ended in the wrong state.

    The message ends with the tail of every component's log (and of the task logs).
    """


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_environment() -> dict[str, str]:
    """This process's environment without any Airflow or pytest setting of its own."""
    prefixes = ("AIRFLOW", "_AIRFLOW", "PYTEST")
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


class AirflowCluster:
    """Scheduler, triggerer, DAG processor and API server as real subprocesses.

    :param root: An empty folder for ``AIRFLOW_HOME``, the DAGs folder, logs and outputs.
    :param dag_files: DAG files copied into the DAGs folder.
    :param env: More environment for every component (connections, provider settings).
    :param config: Airflow settings, ``{("section", "key"): value}``, over the defaults here.
    """

    #: The Airflow components started, in start order (stopped in reverse).
    components: tuple[str, ...] = COMPONENTS

    def __init__(
        self,
        root: Path,
        dag_files: Iterable[Path],
        env: Mapping[str, str] | None = None,
        config: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.home = self.root / "airflow-home"
        self.dags_folder = self.root / "dags"
        self.log_dir = self.root / "process-logs"
        self.outputs = self.root / "outputs"
        for folder in (self.home, self.dags_folder, self.log_dir, self.outputs):
            folder.mkdir(parents=True, exist_ok=True)
        for path in dag_files:
            shutil.copy2(path, self.dags_folder / Path(path).name)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.marker = secrets.token_hex(8)
        self.env = self._environment(env or {}, config or {})
        self.api = AirflowApi(self.base_url)
        self.processes = {name: self._component(name) for name in self.components}
        self._expected_down: set[str] = set()

    # -- configuration -----------------------------------------------------------------------

    def _environment(
        self, extra: Mapping[str, str], overrides: Mapping[tuple[str, str], str]
    ) -> dict[str, str]:
        settings: dict[tuple[str, str], str] = {
            ("core", "dags_folder"): str(self.dags_folder),
            ("core", "executor"): "LocalExecutor",
            ("core", "load_examples"): "False",
            ("core", "parallelism"): "4",
            ("core", "fernet_key"): base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            ("core", "execution_api_server_url"): f"{self.base_url}/execution/",
            ("core", "auth_manager"): (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            ("core", "simple_auth_manager_all_admins"): "True",
            ("database", "sql_alchemy_conn"): f"sqlite:///{self.home / 'airflow.db'}",
            ("api", "host"): "127.0.0.1",
            ("api", "port"): str(self.port),
            ("api", "base_url"): self.base_url,
            ("api", "workers"): "1",
            ("api_auth", "jwt_secret"): secrets.token_urlsafe(64),
            # Real scheduling (asset-triggered runs need it). Unpausing the @daily example
            # creates one scheduled run (catchup=False); the suite waits for it before counting.
            ("scheduler", "scheduler_heartbeat_sec"): "2",
            ("scheduler", "task_instance_heartbeat_sec"): "2",
            ("scheduler", "task_instance_heartbeat_timeout"): "20",
            ("scheduler", "task_instance_heartbeat_timeout_detection_interval"): "2",
            ("scheduler", "enable_health_check"): "False",
            # A task supervisor notices its task process has exited within this many seconds.
            ("workers", "min_heartbeat_interval"): "1",
            ("dag_processor", "refresh_interval"): "5",
            ("dag_processor", "min_file_process_interval"): "30",
            ("dag_processor", "parsing_processes"): "1",
            ("triggerer", "job_heartbeat_sec"): "2",
            ("triggerer", "triggerer_health_check_threshold"): "10",
            ("logging", "logging_level"): "INFO",
        }
        settings.update(overrides)
        env = _clean_environment()
        env.update({f"AIRFLOW__{s.upper()}__{k.upper()}": v for (s, k), v in settings.items()})
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "MRSDEPLOY_OUTPUT_ROOT": str(self.outputs),
                "PYTHONUNBUFFERED": "1",
                MARKER: self.marker,
            }
        )
        env.update(extra)
        return env

    def _component(self, name: str) -> ManagedProcess:
        command = [sys.executable, "-m", "airflow", name]
        if name in ("scheduler", "triggerer"):
            # Task logs are read from local files; no log server on a fixed, public port.
            command.append("--skip-serve-logs")
        if name == "api-server":
            command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        env = {**self.env, **JSON_LOGS} if name == "triggerer" else self.env
        return ManagedProcess(name, command, env, self.log_dir, cwd=self.root)

    # -- lifecycle ---------------------------------------------------------------------------

    def airflow(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run one ``airflow`` CLI command in the cluster's environment (bounded)."""
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Migrate the database, start every component and wait until all are healthy."""
        migrate = self.airflow("db", "migrate", timeout=MIGRATE_TIMEOUT)
        if migrate.returncode != 0:
            raise ClusterError(
                f"airflow db migrate failed ({migrate.returncode}):\n{migrate.stdout[-3000:]}\n"
                f"{migrate.stderr[-3000:]}"
            )
        for process in self.processes.values():
            process.start()
        self.wait_until("every component to report healthy", self._all_healthy, timeout)

    def _all_healthy(self) -> bool:
        health = self.api.health()
        return all(
            health.get(part, {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def stop(self) -> None:
        """Stop every component and anything they left behind. Safe to repeat."""
        for name in reversed(self.components):
            self.processes[name].stop()
        stray = self.leftover_processes()
        kill_processes(stray)
        wait_gone(stray, 10)
        self.api.close()

    def leftover_processes(self) -> list[Any]:
        """Processes started by this cluster that are still alive."""
        return marked_processes(MARKER, self.marker, self.root)

    def restart(self, name: str, graceful: bool = True, timeout: float = START_TIMEOUT) -> None:
        """Stop one component (its whole process group) and start a new one.

        For the triggerer, returns once a new triggerer job is alive.
        """
        process = self.processes[name]
        old_jobs = {job["id"] for job in self._alive_jobs(name)}
        self._expected_down.add(name)
        try:
            process.stop(graceful=graceful)
            process.start()
        finally:
            self._expected_down.discard(name)
        if name == "triggerer":
            self.wait_until(
                "a new triggerer job to heartbeat",
                lambda: any(job["id"] not in old_jobs for job in self._alive_jobs(name)),
                timeout,
            )

    def _alive_jobs(self, name: str) -> list[dict[str, Any]]:
        job_type = {"scheduler": "SchedulerJob", "triggerer": "TriggererJob"}.get(name)
        return self.api.jobs(job_type) if job_type else []

    # -- waiting -----------------------------------------------------------------------------

    def check_components(self) -> None:
        """Fail at once when a component died (instead of waiting for a timeout)."""
        for name, process in self.processes.items():
            if name not in self._expected_down and not process.running:
                raise ClusterError(f"{name} is not running\n{self.diagnostics()}")

    def wait_until(
        self,
        what: str,
        check: Callable[[], T | None],
        timeout: float,
        interval: float = POLL_INTERVAL,
    ) -> T:
        """Call ``check`` until it returns a true value, and return that; bounded by ``timeout``.

        Connection errors and API errors count as "not yet"; the last one is reported.
        """
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            self.check_components()
            try:
                value = check()
                if value:
                    return value
            except (requests.RequestException, AirflowApiError) as exc:
                last_error = exc
            if time.monotonic() > deadline:
                note = f" (last error: {last_error})" if last_error else ""
                raise ClusterError(
                    f"timed out after {timeout:.0f}s waiting for {what}{note}\n{self.diagnostics()}"
                )
            time.sleep(interval)

    def wait_for_dag(self, dag_id: str, unpause: bool = True, timeout: float = 120.0) -> None:
        """Wait until the DAG processor has stored the DAG; unpause it (by default)."""
        self.wait_until(f"DAG {dag_id} to be parsed", lambda: self.api.dag(dag_id), timeout)
        if unpause:
            self.api.unpause(dag_id)

    def wait_for_every_file(self, timeout: float = 120.0) -> None:
        """Wait until the DAG processor has parsed every file of the DAGs folder.

        A file counts as parsed once a DAG from it is stored or its import error is recorded.
        """
        expected = {path.name for path in self.dags_folder.glob("*.py")}

        def parsed() -> bool:
            seen = {Path(dag["fileloc"]).name for dag in self.api.dags()}
            seen |= {Path(error["filename"]).name for error in self.api.import_errors()}
            return expected <= seen

        self.wait_until(f"every DAG file to be parsed ({sorted(expected)})", parsed, timeout)

    def wait_for_log(self, name: str, text: str, timeout: float) -> None:
        """Wait until the log of component ``name`` contains ``text``."""
        process = self.processes[name]
        self.wait_until(f"{name} to log {text!r}", lambda: text in process.log_text(), timeout)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        """Wait until the run ends; return its state (``success`` or ``failed``)."""

        def ended() -> str | None:
            state = self.api.dag_run(dag_id, run_id)["state"]
            return state if state in TERMINAL_RUN_STATES else None

        return self.wait_until(f"run {dag_id}/{run_id} to end", ended, timeout)

    def wait_for_task_state(
        self, dag_id: str, run_id: str, task_id: str, state: str, timeout: float
    ) -> dict[str, Any]:
        """Wait until a task instance is in ``state``; fail early when it ends elsewhere."""

        def reached() -> dict[str, Any] | None:
            ti = self.api.task_instance(dag_id, run_id, task_id)
            if ti["state"] == state:
                return ti
            if ti["state"] in TERMINAL_TASK_STATES:
                raise ClusterError(
                    f"{dag_id}/{run_id}/{task_id} ended {ti['state']!r} before reaching "
                    f"{state!r}\n{self.diagnostics(dag_id, run_id)}"
                )
            return None

        return self.wait_until(f"{dag_id}/{run_id}/{task_id} to be {state}", reached, timeout)

    def wait_deferred_and_settled(
        self, dag_id: str, run_id: str, task_id: str, timeout: float
    ) -> dict[str, Any]:
        """Wait until the task is deferred, its trigger taken by a triggerer, and the scheduler
        has processed the exit of the process that deferred; return the task instance.

        The last step avoids a race in Airflow 3.3's scheduler: when the trigger fires before
        the exit of the process that deferred is processed, that late "success" event is taken
        for the resumed try, which is then marked failed or ``up_for_retry`` ("finished with
        state success, but the task instance's state attribute is ..."). Callers keep the batch
        slow until this returns (docs/e2e.md).
        """
        self.wait_for_task_state(dag_id, run_id, task_id, "deferred", timeout)

        def assigned() -> dict[str, Any] | None:
            ti = self.api.task_instance(dag_id, run_id, task_id)
            trigger = ti.get("trigger") or {}
            return ti if ti["state"] == "deferred" and trigger.get("triggerer_id") else None

        ti = self.wait_until(f"the trigger of {run_id}/{task_id} to be assigned", assigned, 60)
        key = (
            f"TaskInstanceKey(dag_id='{dag_id}', task_id='{task_id}', run_id='{run_id}', "
            "try_number=1"
        )
        self.wait_for_log(
            "scheduler",
            f"Received executor event with state success for task instance {key}",
            timeout,
        )
        return ti

    # -- tasks and triggers ------------------------------------------------------------------

    def task_runner(self, ti_id: str) -> psutil.Process | None:
        """The process running a task instance (it sets its title to ``airflow worker -- <id>``).

        Only processes of this cluster are considered.
        """
        title = f"airflow worker -- {ti_id}"
        for proc in self.leftover_processes():
            with contextlib.suppress(psutil.Error):
                if " ".join(proc.cmdline()).strip() == title:
                    return proc
        return None

    def trigger_events(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1
    ) -> dict[int, list[dict[str, Any]]]:
        """What each triggerer job logged for the task's trigger: ``{triggerer job id: records}``
        (see :mod:`tests.e2e.trigger_logs`)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        output = self.processes["triggerer"].log_text()
        merged = merged_records(
            trigger_files(folder), fired_in_output(output, dag_id, run_id, task_id)
        )
        return {
            key.job_id: records for key, records in merged.items() if key.try_number == try_number
        }

    # -- diagnostics -------------------------------------------------------------------------

    def task_logs(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[Path]:
        """Log files of a run's task tries (``.../task_id=<id>/attempt=<n>.log``)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        pattern = f"task_id={task_id}/*.log" if task_id else "task_id=*/*.log"
        return sorted(folder.glob(pattern))

    def diagnostics(
        self, dag_id: str | None = None, run_id: str | None = None, lines: int = 40
    ) -> str:
        """The end of every component log, and of the run's task logs when given."""
        parts = []
        for name, process in self.processes.items():
            state = "running" if process.running else "stopped"
            parts.append(f"----- {name} ({state}) {process.log_path} -----\n")
            parts.append(process.log_tail(lines))
        if dag_id and run_id:
            for path in self.task_logs(dag_id, run_id):
                parts.append(f"----- task log {path} -----\n{_tail(path, lines)}")
        return "\n".join(parts)
