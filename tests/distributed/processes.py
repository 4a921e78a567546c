"""Finding every process a distributed deployment started, wherever it moved.

The e2e sweep (:func:`tests.e2e.processes.marked_processes`) matches the deployment's marker in
a process's environment or its working directory being the deployment's root. Here components
run in folders of their own (each Celery worker and triggerer has its own working directory;
PostgreSQL and Redis change into their data folders), and processes that set their title
(task runners, PostgreSQL backends, Redis) overwrite the memory ``/proc/<pid>/environ`` shows,
so a working directory anywhere under one of the deployment's folders counts too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

import psutil


def _under(path: str, folders: Iterable[Path]) -> bool:
    candidate = Path(path)
    return any(candidate == folder or folder in candidate.parents for folder in folders)


def deployment_processes(
    marker_name: str, marker_value: str, folders: Iterable[Path]
) -> list[psutil.Process]:
    """Every live process with the marker in its environment or working under ``folders``."""
    roots = [Path(folder).resolve() for folder in folders]
    found: list[psutil.Process] = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if _under(proc.cwd(), roots) or proc.environ().get(marker_name) == marker_value:
                found.append(proc)
    return found
