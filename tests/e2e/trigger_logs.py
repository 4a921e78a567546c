"""What a triggerer logged for a task's triggers, wherever the line landed.

A triggerer writes the log of each trigger it runs beside the task's log, as
``attempt=<try>.log.trigger.<triggerer job id>.log`` (JSON lines). The line it writes when a
trigger fires ("Trigger fired event") can miss that file: the trigger runner sends its log lines
and its trigger state changes on two sockets, and when the triggerer handles the trigger's end
first, it has closed the trigger's file and writes the late line to its own output instead. The
test clusters run their triggerers with JSON logs (:data:`JSON_LOGS`) so that those lines can be
read back from the triggerer's output and counted with the others.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIRED = "Trigger fired event"
#: Environment that makes a triggerer write its own output as JSON lines.
JSON_LOGS = {"AIRFLOW__LOGGING__JSON_LOGS": "True"}
#: ``<dag id>/<run id>/<task id>/<map index>/<try number> (ID <trigger id>)``
_TRIGGER_NAME = re.compile(r"^(?P<dag>[^/]+)/(?P<rest>.+)/(?P<map>-?\d+)/(?P<try>\d+) \(ID \d+\)$")
_TRIGGER_FILE = re.compile(r"^attempt=(?P<try>\d+)\.log\.trigger\.(?P<job>\d+)\.log$")


@dataclass(frozen=True)
class TriggerKey:
    """Which task try a trigger ran for, and in which triggerer job."""

    map_index: int
    try_number: int
    job_id: int


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among ``text``'s lines (anything else is skipped)."""
    records = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def trigger_files(task_folder: Path) -> dict[TriggerKey, list[dict[str, Any]]]:
    """The trigger log files under one task's log folder (``.../task_id=<id>``), read."""
    found: dict[TriggerKey, list[dict[str, Any]]] = {}
    for path in task_folder.glob("**/attempt=*.log.trigger.*.log"):
        match = _TRIGGER_FILE.match(path.name)
        if not match:
            continue
        parent = path.parent.name
        map_index = int(parent.split("=", 1)[1]) if parent.startswith("map_index=") else -1
        key = TriggerKey(map_index, int(match["try"]), int(match["job"]))
        found.setdefault(key, []).extend(json_lines(path.read_text(errors="replace")))
    return found


def fired_in_output(
    output: str, dag_id: str, run_id: str, task_id: str
) -> list[tuple[int, int, dict[str, Any]]]:
    """``(map index, try number, record)`` of the task's "fired" lines a triggerer wrote to its
    own output (see the module's docstring)."""
    found = []
    for record in json_lines(output):
        if record.get("event") != FIRED:
            continue
        match = _TRIGGER_NAME.match(str(record.get("name", "")))
        if not match or match["dag"] != dag_id:
            continue
        if match["rest"] != f"{run_id}/{task_id}":
            continue
        found.append((int(match["map"]), int(match["try"]), record))
    return found


def merged_records(
    files: dict[TriggerKey, list[dict[str, Any]]],
    stray: Iterable[tuple[int, int, dict[str, Any]]],
) -> dict[TriggerKey, list[dict[str, Any]]]:
    """One triggerer's trigger files with its stray "fired" lines added.

    A stray line goes with the latest job of that triggerer that ran the same try: a trigger
    fires in the last run of it (earlier runs ended with their triggerer). With no such file, the
    job is unknown (``-1``), which a test that checks jobs reports.
    """
    merged = {key: list(records) for key, records in files.items()}
    for map_index, try_number, record in stray:
        jobs = [k.job_id for k in files if (k.map_index, k.try_number) == (map_index, try_number)]
        key = TriggerKey(map_index, try_number, max(jobs, default=-1))
        merged.setdefault(key, []).append(record)
    return merged
