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
  for the first time) and for the steady window. A probe that sleeps 20 ms sees a pause that
  begins during its sleep as up to 20 ms shorter than it was, so the garbage collector's own
  pauses are recorded too (``gc.callbacks``), and the ratio takes whichever is longer.

A second measure, the finish: one trigger polls a 250,000-row batch (50,000 with ``--quick``)
that has completed, whose answer carries every row's result. Measured in a fresh process each:
the poll's time, the worst event-loop stall and the memory it added, for the provider's poll
(state and counts only) and, side by side, for polls that parse every row: with the typed
decode of ``get_batch_status``, and with the generic JSON decode (what the trigger did before).

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
    parse_args,
    ratio,
    reference_server,
    run_logged,
    say,
)
from benchmarks.services import WIDE_INPUTS

SERVICE, VERSION = "sleepService", "v1"
WIDE_SERVICE = "wideService"  # eleven numeric inputs, one output: the finished batch
FINISH_ROWS = 250_000
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
    from airflow_provider.batch_set import BatchSet
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

    async def drain(trigger: MrsDeployBatchTrigger) -> None:
        async for _event in trigger.run():
            raise RuntimeError(f"a trigger ended while its batch runs: {_event}")

    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    loop_started = loop.time()
    cpu_started = time.process_time()
    # As Airflow's triggerer creates them (``TriggerRunner.create_triggers``): one at a time,
    # letting the loop run before loading each and before building it.
    tasks = []
    for batch_id in batch_ids:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        # From the kwargs Airflow stores for it: the batch set's JSON form.
        trigger = MrsDeployBatchTrigger(
            batch_set=BatchSet.of_ids((SERVICE, VERSION), [batch_id]).to_json(),
            poll_interval=interval,
        )
        tasks.append(asyncio.create_task(drain(trigger)))
    while len(first_polls) < len(batch_ids):
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
        "triggers": len(batch_ids),
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


#: How the finish poll reads the answer: the provider's way, and two that parse every row.
FINISH_WAYS = {
    "progress": "state and counts only (the provider)",
    "typed": "every row, typed decode (get_batch_status)",
    "generic": "every row, generic JSON decode (before)",
}


async def finish_poll(batch_id: str, way: str) -> dict[str, Any]:
    """One trigger's poll of a finished batch: its time, the loop's worst stall, memory added."""
    import resource

    from airflow_provider.api import calls, decode_json, parse_batch_status
    from airflow_provider.batch_set import BatchSet
    from airflow_provider.hooks import MrsDeployHook
    from airflow_provider.triggers.batch import MrsDeployBatchTrigger

    async def typed(self: Any, name: str, version: str, batch_id: str) -> Any:
        return await self.aget_batch_status(name, version, batch_id)

    async def generic(self: Any, name: str, version: str, batch_id: str) -> Any:
        # What the trigger did before: the whole answer parsed in a worker thread.
        request = calls.get_batch(name, version, batch_id, False)
        body = (await self._acall(request)).body
        return await asyncio.to_thread(
            lambda: parse_batch_status(decode_json(body, request.describe))
        )

    if way != "progress":
        MrsDeployHook.aget_batch_progress = {"typed": typed, "generic": generic}[way]  # type: ignore[method-assign]
    probe = StallProbe()
    probe_task = asyncio.create_task(probe.run())
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    trigger = MrsDeployBatchTrigger(
        batch_set=BatchSet.of_ids((WIDE_SERVICE, VERSION), [batch_id]).to_json()
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    since = loop.time()
    started = time.perf_counter()
    async for event in trigger.run():
        if event.payload["status"] != "complete":
            raise RuntimeError(f"the finished batch did not report success: {event.payload}")
        break
    seconds = time.perf_counter() - started
    await asyncio.sleep(0.2)  # a stall that ends after the event is counted too
    probe_task.cancel()
    await asyncio.gather(probe_task, return_exceptions=True)
    added = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return {
        "seconds": seconds,
        "worst_stall": max(probe.lags(since, loop.time()), default=0.0),
        "added_mib": added,
    }


def child(args: Any) -> None:
    airflow_home()
    if args.finish:
        report = asyncio.run(finish_poll(args.finish, args.way))
    else:
        batch_ids = json.loads(Path(args.batches).read_text())
        report = asyncio.run(run_triggers(batch_ids, args.interval, args.window))
    Path(args.report).write_text(json.dumps(report))


def run_finish(workdir: Path, batch_id: str, way: str) -> dict[str, Any]:
    """:func:`finish_poll` in a fresh process."""
    report_path = workdir / f"finish-{way}.json"
    return run_logged(
        "benchmarks.bench_wait",
        [*("--child", "--finish", batch_id, "--way", way, "--report", str(report_path))],
        workdir / f"finish-{way}.log",
        report_path,
        AIRFLOW_CONN_MRSDEPLOY_DEFAULT=os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"],
    )


def main() -> None:
    args = parse_args(
        __doc__.split("\n", 1)[0],
        [
            ("--child", {"action": "store_true", "help": "(internal) run the triggers"}),
            ("--batches", {"help": "(internal) JSON file of batch ids"}),
            ("--report", {"help": "(internal) where the child writes its figures"}),
            ("--interval", {"type": float, "default": 10.0, "help": "poll interval (10 s)"}),
            ("--window", {"type": float, "default": 0.0, "help": "steady window seconds"}),
            ("--finish", {"help": "(internal) the finished batch to poll once"}),
            ("--way", {"default": "progress", "help": "(internal) how the finish is read"}),
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
        (workdir / "batches.json").write_text(json.dumps(batch_ids))
        log_path = workdir / "triggers.log"
        report = run_logged(
            "benchmarks.bench_wait",
            [
                *("--child", "--batches", str(workdir / "batches.json")),
                *("--report", str(workdir / "report.json")),
                *("--interval", str(args.interval), "--window", str(window)),
            ],
            log_path,
            workdir / "report.json",
            AIRFLOW_CONN_MRSDEPLOY_DEFAULT=os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"],
            AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        )
        log_lines = sum(1 for _ in log_path.open())
        for batch_id in batch_ids:
            hook.cancel_batch(SERVICE, VERSION, batch_id)
        # Started only now: the server running its rows would take CPU from the measure above.
        finish_rows = 50_000 if args.quick else FINISH_ROWS
        finished = hook.start_batch(
            WIDE_SERVICE,
            VERSION,
            json.dumps([dict.fromkeys(WIDE_INPUTS, 1.5)] * finish_rows).encode(),
            parallel_count=100,
        )
        while not hook.get_batch_progress(WIDE_SERVICE, VERSION, finished).is_terminal:
            time.sleep(1)
        # Interleaved, best kept: each way once per round.
        finishes: dict[str, list[dict[str, Any]]] = {way: [] for way in FINISH_WAYS}
        for _ in range(2):
            for way in FINISH_WAYS:
                finishes[way].append(run_finish(workdir, finished, way))
        hook.close()
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
    worst = max(
        report["worst_stall"],
        report["startup_worst_stall"],
        report["worst_gc"],
        report["startup_worst_gc"],
    )
    ratio("wait_worst_stall_vs_100ms", worst / 0.1)
    say(
        f"finish: one trigger polls a completed {finish_rows:,}-row batch (its answer carries "
        "every row's result); best of 2 each, interleaved"
    )
    best = {
        way: {key: min(r[key] for r in runs) for key in runs[0]} for way, runs in finishes.items()
    }
    for way, name in FINISH_WAYS.items():
        figures = best[way]
        say(
            f"  {name:<44} poll {figures['seconds'] * 1000:6.0f} ms, worst loop stall "
            f"{figures['worst_stall'] * 1000:6.1f} ms, "
            f"peak memory added {figures['added_mib']:4.0f} MiB"
        )
    ratio("wait_finish_stall_vs_100ms", best["progress"]["worst_stall"] / 0.1)
    ratio(
        "wait_finish_stall_generic_parse_vs_provider",
        best["generic"]["worst_stall"] / max(best["progress"]["worst_stall"], 1e-3),
    )
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
