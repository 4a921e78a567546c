"""A distributed Airflow deployment on loopback: what teams run, shrunk onto one machine.

The e2e cluster (:class:`tests.e2e.cluster.AirflowCluster`) runs on SQLite with the
LocalExecutor and one triggerer. This one runs the metadata database on PostgreSQL, the tasks
on two Celery workers fed through a Redis broker, and the deferred waits on two triggerers:

- the "control plane" (``api-server``, ``scheduler``, ``dag-processor``) shares one
  ``AIRFLOW_HOME``, as one host would;
- every Celery worker and every triggerer is a "host" of its own: its own working directory,
  ``AIRFLOW_HOME`` (so its own task or trigger logs), ``TMPDIR``, copy of the DAG files and
  host name (``[core] hostname_callable``, see :mod:`tests.distributed.identity`), so nothing
  passes between tasks through local disk and each task instance records which worker ran it.

Components can be killed and restarted one by one, as a lost host would be.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from tests.distributed.airflow_api import PAGE_LIMIT, MappedApi
from tests.distributed.identity import HOST_NAME_VARIABLE
from tests.distributed.processes import deployment_processes
from tests.e2e.cluster import MARKER, START_TIMEOUT, AirflowCluster
from tests.e2e.processes import ManagedProcess
from tests.e2e.trigger_logs import JSON_LOGS, fired_in_output, merged_records, trigger_files

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("worker-1", "worker-2")
TRIGGERERS = ("triggerer-1", "triggerer-2")
CONTROL_PLANE = ("api-server", "dag-processor", "scheduler")
#: Celery pool processes per worker: tasks a worker runs at the same time.
WORKER_CONCURRENCY = 4


class DistributedCluster(AirflowCluster):
    """API server, scheduler (CeleryExecutor), DAG processor, two triggerers, two workers.

    :param root: An empty folder for the deployment.
    :param dag_files: DAG files, copied to the control plane and to every worker.
    :param database_url: SQLAlchemy URL of the PostgreSQL metadata database.
    :param broker_url: Celery broker (Redis) URL.
    :param result_backend: Celery result backend URL.
    :param env: More environment for every component (connections...).
    :param config: Airflow settings over the defaults here.
    :param extra_folders: More folders whose processes belong to the deployment (swept at stop).
    """

    components = (*CONTROL_PLANE, *TRIGGERERS, *WORKERS)
    api: MappedApi

    def __init__(
        self,
        root: Path,
        dag_files: Iterable[Path],
        *,
        database_url: str,
        broker_url: str,
        result_backend: str,
        env: Mapping[str, str] | None = None,
        config: Mapping[tuple[str, str], str] | None = None,
        extra_folders: Iterable[Path] = (),
    ) -> None:
        self._dag_files = [Path(path) for path in dag_files]
        self.extra_folders = [Path(folder) for folder in extra_folders]
        settings: dict[tuple[str, str], str] = {
            ("core", "executor"): "CeleryExecutor",
            ("core", "parallelism"): "16",
            ("core", "hostname_callable"): "tests.distributed.identity.host_name",
            ("api", "maximum_page_limit"): str(PAGE_LIMIT),
            ("database", "sql_alchemy_conn"): database_url,
            ("celery", "broker_url"): broker_url,
            ("celery", "result_backend"): result_backend,
            ("celery", "worker_concurrency"): str(WORKER_CONCURRENCY),
            # The scheduler sends tasks to the broker from its own process.
            ("celery", "sync_parallelism"): "1",
            ("celery", "operation_timeout"): "10",
            # Said explicitly (the provider's default): a task whose worker vanished is
            # retried by Airflow long before the broker would hand its message out again.
            ("celery_broker_transport_options", "visibility_timeout"): "86400",
            # A scheduler that died is noticed, and its queued tasks adopted, within seconds.
            ("scheduler", "scheduler_health_check_threshold"): "10",
            ("scheduler", "orphaned_tasks_check_interval"): "5",
            # A triggerer whose heartbeat is older than the threshold has its triggers handed to
            # a live one; each triggerer claims at most 2 new triggers per loop (about 1 s),
            # so the deferred waits spread over both.
            ("triggerer", "job_heartbeat_sec"): "2",
            ("triggerer", "triggerer_health_check_threshold"): "10",
            ("triggerer", "max_trigger_to_select_per_loop"): "2",
        }
        settings.update(config or {})
        environment = {"PYTHONPATH": str(REPO_ROOT)}  # for [core] hostname_callable
        environment.update(env or {})
        super().__init__(root, self._dag_files, env=environment, config=settings)
        self.api.close()
        self.api = MappedApi(self.base_url)

    # -- hosts -------------------------------------------------------------------------------

    def host_dir(self, name: str) -> Path:
        """The folder of a worker or triggerer "host"."""
        return self.root / "hosts" / name

    def host_home(self, name: str) -> Path:
        """``AIRFLOW_HOME`` of a component (the control plane shares one)."""
        if name in WORKERS or name in TRIGGERERS:
            return self.host_dir(name) / "airflow-home"
        return self.home

    def _component(self, name: str) -> ManagedProcess:
        if name in CONTROL_PLANE:
            return super()._component(name)
        folder = self.host_dir(name)
        home, tmp, dags = folder / "airflow-home", folder / "tmp", folder / "dags"
        for path in (home, tmp, dags, folder / "outputs"):
            path.mkdir(parents=True, exist_ok=True)
        for path in self._dag_files:
            shutil.copy2(path, dags / path.name)
        env = dict(self.env)
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "TMPDIR": str(tmp),
                "MRSDEPLOY_OUTPUT_ROOT": str(folder / "outputs"),
                HOST_NAME_VARIABLE: name,
            }
        )
        if name in TRIGGERERS:
            env.update(JSON_LOGS)
        command = [sys.executable, "-m", "airflow"]
        if name in TRIGGERERS:
            command += ["triggerer", "--skip-serve-logs"]
        else:
            command += [
                "celery",
                "worker",
                "--concurrency",
                str(WORKER_CONCURRENCY),
                "--celery-hostname",
                f"{name}@%h",
                "--skip-serve-logs",
            ]
        return ManagedProcess(name, command, env, self.log_dir, cwd=folder)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Migrate, start every component, wait until both triggerers and workers are up."""
        super().start(timeout)
        for name in TRIGGERERS:
            self.wait_until(f"{name} to heartbeat", partial(self.triggerer_job, name), timeout)
        for name in WORKERS:
            self.wait_worker_ready(name, timeout)

    def wait_worker_ready(self, name: str, timeout: float = START_TIMEOUT) -> None:
        """Wait until the worker's current process has connected and logged ``ready``."""
        process = self.processes[name]
        header = f"===== {name} start #{process.generation} "

        def ready() -> bool:
            text = process.log_text()
            return " ready." in text[text.rfind(header) :]

        self.wait_until(f"{name} to be ready", ready, timeout)

    def kill(self, name: str) -> None:
        """SIGKILL a component's whole process tree at once, as a lost host would go.

        It stays down (and is not reported as dead) until :meth:`start_component`.
        """
        self._expected_down.add(name)
        self.processes[name].stop(graceful=False)

    def start_component(self, name: str, timeout: float = START_TIMEOUT) -> None:
        """Start a component again (after :meth:`kill`) and wait until it is up."""
        old_jobs = {job["id"] for job in self._alive_jobs(name)}
        self.processes[name].start()
        self._expected_down.discard(name)
        if name in WORKERS:
            self.wait_worker_ready(name, timeout)
        elif name in TRIGGERERS or name == "scheduler":
            self.wait_until(
                f"a new {name} job to heartbeat",
                lambda: any(job["id"] not in old_jobs for job in self._alive_jobs(name)),
                timeout,
            )

    def _alive_jobs(self, name: str) -> list[dict[str, Any]]:
        if name in TRIGGERERS:
            return [job for job in self.api.jobs("TriggererJob") if job["hostname"] == name]
        return super()._alive_jobs(name)

    def triggerer_job(self, name: str) -> int | None:
        """The id of the live triggerer job of a triggerer "host", if any."""
        jobs = self._alive_jobs(name)
        return int(jobs[-1]["id"]) if jobs else None

    def leftover_processes(self) -> list[Any]:
        """Processes of this deployment that are still alive (see :mod:`.processes`)."""
        return deployment_processes(MARKER, self.marker, [self.root, *self.extra_folders])

    def task_runner(self, ti_id: str) -> psutil.Process | None:
        """The process running a task instance, on whichever worker."""
        title = f"airflow worker -- {ti_id}"
        for proc in self.leftover_processes():
            with contextlib.suppress(psutil.Error):
                if " ".join(proc.cmdline()).strip() == title:
                    return proc
        return None

    # -- logs --------------------------------------------------------------------------------

    def _homes(self, names: Iterable[str]) -> list[Path]:
        return [self.host_home(name) for name in names]

    def task_logs(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[Path]:
        """Task logs of a run, on every worker (``.../task_id=<id>[/map_index=<n>]/*.log``)."""
        found: list[Path] = []
        for home in self._homes(WORKERS):
            folder = home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
            pattern = f"task_id={task_id}/**/attempt=*.log" if task_id else "**/attempt=*.log"
            found += [path for path in folder.glob(pattern) if ".log.trigger." not in path.name]
        return sorted(found)

    def trigger_records(
        self, dag_id: str, run_id: str, task_id: str
    ) -> dict[tuple[int, int, int], list[dict[str, Any]]]:
        """What each triggerer logged for a task's triggers, on every triggerer "host".

        ``{(map_index, try_number, triggerer job id): records}``; an unmapped task has map
        index -1 (see :mod:`tests.e2e.trigger_logs`).
        """
        found: dict[tuple[int, int, int], list[dict[str, Any]]] = {}
        for name in TRIGGERERS:
            folder = (
                self.host_home(name)
                / "logs"
                / f"dag_id={dag_id}"
                / f"run_id={run_id}"
                / f"task_id={task_id}"
            )
            output = self.processes[name].log_text()
            merged = merged_records(
                trigger_files(folder), fired_in_output(output, dag_id, run_id, task_id)
            )
            for key, records in merged.items():
                found.setdefault((key.map_index, key.try_number, key.job_id), []).extend(records)
        return found
