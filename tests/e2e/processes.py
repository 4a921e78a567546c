"""Long-running subprocesses with a log file each, in their own process group.

Airflow components fork helpers (LocalExecutor workers, task supervisors, DAG file parsers) and
task runners put themselves in a process group of their own, so stopping a component means:
signal its whole group, wait (bounded), then kill whatever of its process tree is still alive,
whatever group it moved to. Every process started here carries a marker in its environment and
runs in a known working directory, so a final sweep can find anything that escaped the tree (for
example a task runner re-parented to init after its supervisor died).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

STOP_TIMEOUT = 20.0
KILL_TIMEOUT = 10.0


def _tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (those still alive)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_processes(processes: Sequence[psutil.Process], sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to each process and its process group (when it leads one)."""
    for proc in processes:
        if not proc.is_running():  # also false when the pid now belongs to another process
            continue
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)


def wait_gone(processes: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait (bounded) for processes to exit; return those still alive."""
    _gone, alive = psutil.wait_procs(list(processes), timeout=timeout)
    return list(alive)


def marked_processes(marker_name: str, marker_value: str, cwd: Path) -> list[psutil.Process]:
    """Every live process with ``marker_name=marker_value`` in its environment or in ``cwd``.

    Both are inherited by every descendant. The working directory is needed too: processes
    that set their title (task runners, LocalExecutor workers) overwrite the memory that
    ``/proc/<pid>/environ`` shows.
    """
    found: list[psutil.Process] = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if proc.cwd() == str(cwd) or proc.environ().get(marker_name) == marker_value:
                found.append(proc)
    return found


class ManagedProcess:
    """One component (``airflow scheduler``, ...) started in a new session with its own log.

    :param name: Short name, used for the log file (``<log_dir>/<name>.log``).
    :param command: The command line.
    :param env: The complete environment of the process.
    :param log_dir: Folder of the log files; a restart appends to the same file.
    :param cwd: Working directory of the process.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        cwd: Path,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_dir / f"{name}.log"
        self.generation = 0
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Pid of the running process (None when stopped)."""
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        """Start the process; stdout and stderr go to its log file."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.generation += 1
        with self.log_path.open("ab") as log:
            header = f"\n===== {self.name} start #{self.generation} at {time.ctime()} =====\n"
            log.write(header.encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self, graceful: bool = True) -> None:
        """Stop the process and its whole tree. Safe to repeat.

        ``graceful`` sends SIGTERM to the component (which shuts its children down itself) and
        waits up to ``STOP_TIMEOUT``; then the process group and every process of the tree still
        alive are killed. Without ``graceful`` everything is killed at once, as a crash would.
        """
        popen, self._popen = self._popen, None
        if popen is None:
            return
        tree = _tree(popen.pid)
        if graceful and popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(STOP_TIMEOUT)
        # Descendants that appeared meanwhile, then everything of the tree still alive.
        seen = {proc.pid: proc for proc in tree}
        seen.update({proc.pid: proc for proc in _tree(popen.pid)})
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        kill_processes(list(seen.values()))
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(KILL_TIMEOUT)
        wait_gone(list(seen.values()), KILL_TIMEOUT)

    def restart(self, graceful: bool = True) -> None:
        """Stop the process (and its tree), then start it again with the same command."""
        self.stop(graceful=graceful)
        self.start()

    def log_text(self) -> str:
        """The whole log file (every generation)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log file."""
        return "\n".join(self.log_text().splitlines()[-lines:])
