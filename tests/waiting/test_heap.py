"""The first wait of a process settles its heap: what the collector's full passes walk shrinks.

Each case runs in a fresh interpreter: freezing is once per process, and this test process's
own heap is left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

_SETTLE = """
import gc, json
import airflow_provider.triggers.batch  # what a triggerer holds before its first wait
from airflow_provider.waiting.heap import settle_heap_once
walked_before = len(gc.get_objects())
first = settle_heap_once()
second = settle_heap_once()
print(json.dumps({"first": first, "second": second, "frozen": gc.get_freeze_count(),
                  "walked_before": walked_before, "walked_after": len(gc.get_objects())}))
"""

_TRIGGER = """
import asyncio, gc, json
from airflow_provider.batch_set import BatchSet
from airflow_provider.triggers import MrsDeployBatchTrigger
before = gc.get_freeze_count()
trigger = MrsDeployBatchTrigger(
    batch_set=BatchSet.of_ids(("mtService", "v1.0.0"), ["%s"]).to_json(), poll_interval=0.2
)
async def first_event():
    async for event in trigger.run():
        return event.payload
payload = asyncio.run(first_event())
print(json.dumps({"before": before, "after": gc.get_freeze_count(), "status": payload["status"]}))
"""


def _run(code: str, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_first_settle_freezes_what_is_alive_and_later_ones_do_nothing() -> None:
    figures = _run(_SETTLE)
    assert figures["first"] is True and figures["second"] is False
    assert figures["frozen"] > 50_000  # Airflow and its imports
    # What a full collection walks: most of the process before, a small rest after.
    assert figures["walked_after"] < figures["walked_before"] / 10


def test_the_option_turns_it_off() -> None:
    figures = _run(_SETTLE, AIRFLOW__MRSDEPLOY__FREEZE_TRIGGERER_HEAP="False")
    assert figures["first"] is False and figures["frozen"] == 0
    assert figures["walked_after"] >= figures["walked_before"] - 100


def test_a_mistyped_option_value_keeps_the_default_and_says_so() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SETTLE],
        cwd=REPO,
        env={**os.environ, "AIRFLOW__MRSDEPLOY__FREEZE_TRIGGERER_HEAP": "maybe"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["first"] is True
    said = done.stdout + done.stderr  # where Airflow's logging writes depends on its set-up
    assert "freeze_triggerer_heap" in said and "maybe" in said


def test_a_trigger_settles_the_heap_when_it_starts(
    mrsdeploy_conn: str, reference_server: Any
) -> None:
    from airflow_provider.hooks import MrsDeployHook

    with contextlib.closing(MrsDeployHook(mrsdeploy_conn)) as hook:
        batch_id = hook.start_batch(
            "mtService", "v1.0.0", json.dumps([{"hp": 110.0, "wt": 2.62}]).encode()
        )
    env = {"AIRFLOW_CONN_MRSDEPLOY_DEFAULT": os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"]}
    figures = _run(_TRIGGER % batch_id, **env)
    assert figures["before"] == 0 and figures["after"] > 50_000
    assert figures["status"] == "complete"
    off = _run(_TRIGGER % batch_id, AIRFLOW__MRSDEPLOY__FREEZE_TRIGGERER_HEAP="False", **env)
    assert off["after"] == 0 and off["status"] == "complete"
