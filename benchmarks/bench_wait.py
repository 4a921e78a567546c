"""Wait: 1,000 deferred waits polling the reference server from one event loop.

One ``MrsDeployBatchTrigger`` per running batch (1,000 batches that stay ``InProgress``), all
run as tasks of one asyncio loop, as a triggerer runs them, with a 10 s poll interval. The
triggers run in a child process whose log (INFO, one line per poll, as a triggerer writes it)
goes to a file. Measured in that process:

- CPU seconds per poll (``time.process_time`` over a steady window, divided by the polls made
  in it), and what 1,000 triggers at a 10 s interval cost as a share of one core;
- the worst event-loop stall: a probe task sleeps 20 ms in a loop and records how late it
  wakes up (what the idle process and the probe cost is measured first, for 5 s, and taken
  out of the per-poll figure); reported for the start-up (every trigger logs in and polls
  for the first time) and for the steady window.

Run: ``python -m benchmarks.bench_wait [--quick]``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    airflow_home,
    connection_env,
    env_with_repo,
    parse_args,
    python,
    ratio,
    reference_server,
    say,
)

SERVICE, VERSION = "sleepService", "v1"
PROBE_SECONDS = 0.02
BASELINE_SECONDS = 5.0


class StallProbe:
    """Measures how late the loop runs a task that asked to sleep ``PROBE_SECONDS``.

    Each sample is kept with the time the probe woke up, so a stall is counted in the phase in
    which it ended. (Counted by the time its sleep began, the stall of the first loop iteration
    after the triggers are created, where each of them takes its first step, would fall into
    the idle phase before and be counted nowhere.)
    """

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(PROBE_SECONDS)
            woke = loop.time()
            self.samples.append((woke, woke - started - PROBE_SECONDS))

    def lags(self, since: float, until: float) -> list[float]:
        """Lags of the sleeps that ended in ``[since, until)`` (loop time), sorted."""
        return sorted(lag for woke, lag in self.samples if since <= woke < until)


class GcPauses:
    """Durations of the interpreter's garbage collections, to tell their stalls from others."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
        else:
            self.pauses.append((self._started, now - self._started, int(info["generation"])))

    def worst(self, since: float, until: float) -> float:
        """Longest pause that began in ``[since, until)`` (``perf_counter`` time)."""
        return max((d for t, d, _ in self.pauses if since <= t < until), default=0.0)


async def run_triggers(batch_ids: list[str], interval: float, window: float) -> dict[str, Any]:
    from airflow_provider.hooks import MrsDeployHook
    from airflow_provider.triggers.batch import MrsDeployBatchTrigger

    polls = 0
    first_polls: set[int] = set()
    original = MrsDeployHook.aget_batch_progress

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal polls
        result = await original(self, *args, **kwargs)
        polls += 1
        first_polls.add(id(self))
        return result

    MrsDeployHook.aget_batch_progress = counted  # type: ignore[method-assign]
    probe = StallProbe()
    probe_task = asyncio.create_task(probe.run())
    collections = GcPauses()
    gc.callbacks.append(collections)
    # What the process costs with the probe alone, to take it out of the per-poll figure.
    idle_cpu = time.process_time()
    await asyncio.sleep(BASELINE_SECONDS)
    idle_rate = (time.process_time() - idle_cpu) / BASELINE_SECONDS
    triggers = [
        MrsDeployBatchTrigger(
            batch_ids=[batch_id],
            service_name=SERVICE,
            service_version=VERSION,
            poll_interval=interval,
        )
        for batch_id in batch_ids
    ]

    async def drain(trigger: MrsDeployBatchTrigger) -> None:
        async for _event in trigger.run():
            raise RuntimeError(f"a trigger ended while its batch runs: {_event}")

    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    loop_started = loop.time()
    cpu_started = time.process_time()
    tasks = [asyncio.create_task(drain(t)) for t in triggers]
    while len(first_polls) < len(triggers):
        await asyncio.sleep(0.05)
        for task in tasks:
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    startup = time.perf_counter() - started
    startup_cpu = time.process_time() - cpu_started
    loop_steady = loop.time()
    steady_started = time.perf_counter()
    polls_before = polls
    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    await asyncio.sleep(window)
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    steady_polls = polls - polls_before
    gc.callbacks.remove(collections)
    startup_lags = probe.lags(loop_started, loop_steady)
    steady_lags = probe.lags(loop_steady, loop.time())
    for task in [*tasks, probe_task]:
        task.cancel()
    await asyncio.gather(*tasks, probe_task, return_exceptions=True)
    return {
        "triggers": len(triggers),
        "startup_seconds": startup,
        "startup_cpu": startup_cpu,
        "startup_worst_stall": max(startup_lags, default=0.0),
        "startup_worst_gc": collections.worst(started, steady_started),
        "worst_gc": collections.worst(steady_started, time.perf_counter()),
        "window": wall,
        "cpu": cpu,
        "idle_cpu": idle_rate * wall,
        "polls": steady_polls,
        "worst_stall": max(steady_lags, default=0.0),
        "p99_stall": steady_lags[int(len(steady_lags) * 0.99)] if steady_lags else 0.0,
    }


def child(args: Any) -> None:
    airflow_home()
    batch_ids = json.loads(Path(args.batches).read_text())
    report = asyncio.run(run_triggers(batch_ids, args.interval, args.window))
    Path(args.report).write_text(json.dumps(report))


def main() -> None:
    args = parse_args(
        __doc__.split("\n", 1)[0],
        [
            ("--child", {"action": "store_true", "help": "(internal) run the triggers"}),
            ("--batches", {"help": "(internal) JSON file of batch ids"}),
            ("--report", {"help": "(internal) where the child writes its figures"}),
            ("--interval", {"type": float, "default": 10.0, "help": "poll interval (10 s)"}),
            ("--window", {"type": float, "default": 0.0, "help": "steady window seconds"}),
        ],
    )
    if args.child:
        child(args)
        return
    count = 200 if args.quick else 1_000
    window = args.window or (25.0 if args.quick else 40.0)
    workdir = Path(tempfile.mkdtemp(prefix="mrsdeploy-bench-wait-"))
    airflow_home()
    with reference_server(workdir, "--max-concurrent-batches", str(count + 10)) as server:
        os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"] = connection_env(
            server.url, server.admin_password
        )
        from airflow_provider.hooks import MrsDeployHook

        hook = MrsDeployHook()
        body = json.dumps([{"seconds": 3600}]).encode()
        batch_ids = [
            hook.start_batch(SERVICE, VERSION, body, parallel_count=1) for _ in range(count)
        ]
        hook.close()
        (workdir / "batches.json").write_text(json.dumps(batch_ids))
        log_path = workdir / "triggers.log"
        report_path = workdir / "report.json"
        import subprocess

        with log_path.open("w") as log:
            done = subprocess.run(
                [
                    python(),
                    *("-m", "benchmarks.bench_wait", "--child"),
                    *("--batches", str(workdir / "batches.json"), "--report", str(report_path)),
                    *("--interval", str(args.interval), "--window", str(window)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env_with_repo(
                    AIRFLOW_CONN_MRSDEPLOY_DEFAULT=os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"],
                    AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
                ),
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"trigger process failed; see {log_path}")
        report = json.loads(report_path.read_text())
        log_lines = sum(1 for _ in log_path.open())
    per_poll = (report["cpu"] - report["idle_cpu"]) / max(report["polls"], 1)
    share = per_poll * count / args.interval
    share_1000 = per_poll * 1000 / args.interval
    say(f"wait: {count:,} triggers in one event loop, poll interval {args.interval:g} s")
    say(
        f"  start-up (each trigger logs in and polls once): {report['startup_seconds']:.1f} s, "
        f"{report['startup_cpu']:.1f} CPU s, worst loop stall "
        f"{report['startup_worst_stall'] * 1000:.1f} ms (longest garbage collection "
        f"{report['startup_worst_gc'] * 1000:.0f} ms)"
    )
    say(
        f"  steady {report['window']:.0f} s: {report['polls']:,} polls, {report['cpu']:.2f} CPU s"
        f" ({report['idle_cpu']:.2f} of them the idle process and stall probe) = "
        f"{per_poll * 1000:.3f} ms CPU per poll; worst loop stall "
        f"{report['worst_stall'] * 1000:.1f} ms (p99 {report['p99_stall'] * 1000:.1f} ms, longest "
        f"garbage collection {report['worst_gc'] * 1000:.0f} ms); "
        f"{log_lines:,} log lines written"
    )
    say(
        f"  {count:,} triggers at {args.interval:g} s cost {share:.2%} of one core "
        f"(1,000 triggers: {share_1000:.2%})"
    )
    ratio("wait_core_share_1000_triggers", share_1000)
    worst = max(report["worst_stall"], report["startup_worst_stall"])
    ratio("wait_worst_stall_vs_100ms", worst / 0.1)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
