"""Reading a triggerer's trigger logs: a "fired" line that missed the trigger's file is found in
the triggerer's own output and counted with the trigger's job."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.trigger_logs import FIRED, TriggerKey, fired_in_output, merged_records, trigger_files


def _line(**record: object) -> str:
    return json.dumps(record)


def _write(path: Path, *lines: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def test_a_fired_line_in_the_output_joins_the_latest_job_of_its_try(tmp_path: Path) -> None:
    task = tmp_path / "dag_id=d" / "run_id=r" / "task_id=submit"
    _write(task / "map_index=1" / "attempt=1.log.trigger.3.log", _line(event="starting"))
    _write(task / "map_index=1" / "attempt=1.log.trigger.7.log", _line(event="resumed"))
    _write(task / "map_index=0" / "attempt=1.log.trigger.3.log", _line(event=FIRED, result="a"))
    output = "\n".join(
        [
            "===== triggerer-1 start #1 (not JSON)",
            _line(event=FIRED, name="d/r/submit/1/1 (ID 12)", result="late"),
            _line(event=FIRED, name="d/r/submit/2/1 (ID 13)", result="no file"),
            _line(event=FIRED, name="d/other/submit/1/1 (ID 14)", result="another run"),
            _line(event=FIRED, name="d/r/collect/1/1 (ID 15)", result="another task"),
            _line(event="Trigger started", name="d/r/submit/1/1 (ID 12)"),
            "[1, 2]",
        ]
    )

    stray = fired_in_output(output, "d", "r", "submit")
    merged = merged_records(trigger_files(task), stray)

    assert [(m, t, r["result"]) for m, t, r in stray] == [(1, 1, "late"), (2, 1, "no file")]
    assert merged[TriggerKey(1, 1, 7)] == [{"event": "resumed"}, stray[0][2]]
    assert merged[TriggerKey(1, 1, 3)] == [{"event": "starting"}]
    assert merged[TriggerKey(0, 1, 3)] == [{"event": FIRED, "result": "a"}]
    assert merged[TriggerKey(2, 1, -1)] == [stray[1][2]]


def test_an_unmapped_task_and_a_run_id_with_slashes(tmp_path: Path) -> None:
    task = tmp_path / "task_id=wait"
    _write(task / "attempt=2.log.trigger.4.log", _line(event="polling"))
    output = _line(event=FIRED, name="d/manual/2026/wait/-1/2 (ID 1)", result="done")

    stray = fired_in_output(output, "d", "manual/2026", "wait")
    merged = merged_records(trigger_files(task), stray)

    assert merged == {TriggerKey(-1, 2, 4): [{"event": "polling"}, stray[0][2]]}
