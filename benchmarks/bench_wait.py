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

A third measure, CPU per poll against a bare client: the same batches polled at the same
interval by the same number of pollers in one event loop, each kind in a fresh process of its
own, interleaved over three rounds (two with ``--quick``; lowest kept, every round printed):
the provider's triggers (as above, logging at INFO to a file), and a bare aiohttp client (one
session, a task per batch: GET the batch without partial results, decode the JSON, check the
state, sleep). With ``--trust-env-off``, the provider's triggers on a connection with the
extra ``trust_env: false`` run too (what honouring the environment's proxy variables costs
per poll). Only the polling process's CPU is counted (``time.process_time`` over a steady
window of whole intervals, opening half an interval after every poller has polled once, minus
the idle process with its stall probe, measured for 5 s before the pollers start and 5 s after
they stop). The probe here sleeps 10 ms; the worst stall it sees in the steady window is
reported. With ``--profile``, one more run of the provider and the bare client, without the
probe, profiles the steady window (cProfile counting the loop thread's CPU) and prints where
the CPU goes. ``--cpu-only`` runs this measure alone.

Run: ``python -m benchmarks.bench_wait [--quick] [--profile] [--cpu-only] [--trust-env-off]
[--heap-unfrozen]``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    airflow_home,
    connection_env,
    load_average,
    parse_args,
    ratio,
    reference_server,
    run_logged,
    say,
    without_trust_env,
)
from benchmarks.services import WIDE_INPUTS

SERVICE, VERSION = "sleepService", "v1"
WIDE_SERVICE = "wideService"  # eleven numeric inputs, one output: the finished batch
FINISH_ROWS = 250_000
PROBE_SECONDS = 0.02
BASELINE_SECONDS = 5.0
CPU_PROBE_SECONDS = 0.01  # the loop-lag sampler of the CPU-per-poll measure
CPU_ROUNDS = 3
#: The pollers of the CPU-per-poll measure.
POLLERS = {
    "provider": "provider (MrsDeployBatchTrigger)",
    "bare": "bare aiohttp poll",
    "provider_no_env": "provider, connection extra trust_env=false",
    "provider_unfrozen": "provider, freeze_triggerer_heap=False",
}
#: The optional pollers, and the flag that adds each.
OPTIONAL_POLLERS = {"provider_no_env": "trust_env_off", "provider_unfrozen": "heap_unfrozen"}


class StallProbe:
    """Measures how late the loop runs a task that asked to sleep ``PROBE_SECONDS``.

    Each sample is kept with the time the probe woke up, so a stall is counted in the phase in
    which it ended. (Counted by the time its sleep began, the stall of the first loop iteration
    after the triggers are created, where each of them takes its first step, would fall into
    the idle phase before and be counted nowhere.)
    """

    def __init__(self, period: float = PROBE_SECONDS) -> None:
        self.period = period
        self.samples: list[tuple[float, float]] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.period)
            woke = loop.time()
            self.samples.append((woke, woke - started - self.period))

    def lags(self, since: float, until: float) -> list[float]:
        """Lags of the sleeps that ended in ``[since, until)`` (loop time), sorted."""
        return sorted(lag for woke, lag in self.samples if since <= woke < until)


class GcPauses:
    """Durations of the interpreter's garbage collections, to tell their stalls from others."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []
        #: CPU time of each full collection (a wall-clock pause on a busy machine also counts
        #: the time other processes had the core).
        self.full_cpu: list[float] = []
        self._started = self._started_cpu = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if phase == "start":
            self._started, self._started_cpu = now, cpu
        else:
            generation = int(info["generation"])
            self.pauses.append((self._started, now - self._started, generation))
            if generation == 2:
                self.full_cpu.append(cpu - self._started_cpu)

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


async def bare_poller(session: Any, url: str, interval: float, index: int, polled: Any) -> None:
    """A bare poll of one batch, for ever: GET without partial results, decode, check, sleep."""
    while True:
        async with session.get(url, params={"showPartialResults": "false"}) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"poll answered {response.status}: {body[:200]!r}")
        state = json.loads(body)["state"]
        if state not in ("Ready", "InProgress"):
            raise RuntimeError(f"a polled batch ended: {state}")
        polled(index)
        await asyncio.sleep(interval)


async def poll_cpu(
    batch_ids: list[str], interval: float, window: float, poller: str, profile: bool
) -> dict[str, Any]:
    """CPU per poll of ``len(batch_ids)`` pollers of one kind in this loop, over a steady
    window; the worst lag of a 10 ms sampler in that window (start-up excluded)."""
    from benchmarks.profiling import new_profiler

    polls = 0
    first_polls: set[int] = set()

    def polled(index: int) -> None:
        nonlocal polls
        polls += 1
        first_polls.add(index)

    probe = StallProbe(CPU_PROBE_SECONDS)
    # Not in a profiled run: there the profile is of the polls alone.
    probe_task = asyncio.create_task(probe.run() if not profile else asyncio.sleep(1e9))
    collections = GcPauses()
    idle_before = await idle_cpu_rate()
    loop = asyncio.get_running_loop()
    session: Any = None
    tasks = []
    if poller.startswith("provider"):
        from airflow_provider.batch_set import BatchSet
        from airflow_provider.hooks import MrsDeployHook
        from airflow_provider.triggers.batch import MrsDeployBatchTrigger

        original = MrsDeployHook.aget_batch_progress

        async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = await original(self, *args, **kwargs)
            polled(id(self))
            return result

        MrsDeployHook.aget_batch_progress = counted  # type: ignore[method-assign]

        async def drain(trigger: MrsDeployBatchTrigger) -> None:
            async for _event in trigger.run():
                raise RuntimeError(f"a trigger ended while its batch runs: {_event}")

        for batch_id in batch_ids:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            trigger = MrsDeployBatchTrigger(
                batch_set=BatchSet.of_ids((SERVICE, VERSION), [batch_id]).to_json(),
                poll_interval=interval,
            )
            tasks.append(asyncio.create_task(drain(trigger)))
    else:
        import aiohttp

        url = os.environ["BENCH_URL"]
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100),
            headers={
                "Authorization": f"Bearer {os.environ['BENCH_TOKEN']}",
                "Accept": "application/json",
            },
        )
        for index, batch_id in enumerate(batch_ids):
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            target = f"{url}/api/{SERVICE}/{VERSION}/batch/{batch_id}"
            tasks.append(asyncio.create_task(bare_poller(session, target, interval, index, polled)))
    while len(first_polls) < len(batch_ids):
        await asyncio.sleep(0.05)
        for task in tasks:
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    # The window opens half an interval after the last first poll, between two rounds of
    # polls, and lasts whole intervals: each poller then polls the same number of times in
    # it, whatever the phase (a window opening as a round of polls falls due would count
    # that round, or not, by chance).
    await asyncio.sleep(interval / 2)
    gc.callbacks.append(collections)
    profiler = new_profiler() if profile else None
    steady = loop.time()
    load_before = load_average()
    polls_before = polls
    cpu_before = time.process_time()
    thread_before = time.thread_time()
    wall_before = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    await asyncio.sleep(window)
    if profiler is not None:
        profiler.disable()
    thread_cpu = time.thread_time() - thread_before
    load_after = load_average()
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    steady_polls = polls - polls_before
    gc.callbacks.remove(collections)
    lags = probe.lags(steady, loop.time())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if session is not None:
        await session.close()
    # The idle process and sampler again, after the pollers: their cost is taken out as the
    # mean of before and after.
    await asyncio.sleep(0.5)
    idle_after = await idle_cpu_rate()
    idle_rate = (idle_before + idle_after) / 2
    probe_task.cancel()
    await asyncio.gather(probe_task, return_exceptions=True)
    report: dict[str, Any] = {
        "pollers": len(batch_ids),
        "window": wall,
        "cpu": cpu,
        "thread_cpu": thread_cpu,
        "idle_cpu": idle_rate * wall,
        "idle_before": idle_before,
        "load": f"{load_before}-{load_after}",
        "idle_after": idle_after,
        "polls": steady_polls,
        "worst_stall": max(lags, default=0.0),
        "p99_stall": lags[int(len(lags) * 0.99)] if lags else 0.0,
        "worst_gc": collections.worst(wall_before, time.perf_counter()),
        "full_gcs": sum(1 for _t, _d, generation in collections.pauses if generation == 2),
        "full_gc_cpu": max(collections.full_cpu, default=0.0),
    }
    if profiler is not None:
        from benchmarks.profiling import summarize

        report["profile"] = summarize(profiler, max(steady_polls, 1), "poll")
    return report


async def idle_cpu_rate() -> float:
    """CPU seconds per second of this process while nothing but the sampler runs."""
    started = time.process_time()
    await asyncio.sleep(BASELINE_SECONDS)
    return (time.process_time() - started) / BASELINE_SECONDS


def cpu_per_poll(report: dict[str, Any]) -> float:
    """Seconds of CPU per poll, the idle process and probe taken out."""
    return float(report["cpu"] - report["idle_cpu"]) / max(int(report["polls"]), 1)


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
    elif args.poller:
        batch_ids = json.loads(Path(args.batches).read_text())
        report = asyncio.run(
            poll_cpu(batch_ids, args.interval, args.window, args.poller, args.profile)
        )
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
            ("--poller", {"help": "(internal) provider or bare: the CPU-per-poll measure"}),
            ("--profile", {"action": "store_true", "help": "profile the steady polling"}),
            ("--cpu-only", {"action": "store_true", "help": "only the CPU-per-poll measure"}),
            (
                "--trust-env-off",
                {"action": "store_true", "help": "CPU per poll with trust_env=false too"},
            ),
            (
                "--heap-unfrozen",
                {
                    "action": "store_true",
                    "help": "CPU per poll and stalls with freeze_triggerer_heap off too",
                },
            ),
        ],
    )
    if args.child:
        child(args)
        return
    count = 200 if args.quick else 1_000
    window = args.window or (25.0 if args.quick else 40.0)
    workdir = Path(tempfile.mkdtemp(prefix="mrsdeploy-bench-wait-"))
    airflow_home()
    report: dict[str, Any] | None = None
    finishes: dict[str, list[dict[str, Any]]] = {}
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
        if not args.cpu_only:
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
            report["log_lines"] = sum(1 for _ in log_path.open())
        # Whole intervals: each poller then polls the same number of times in the window,
        # whatever the phase of the polls.
        cpu_window = args.interval * (2 if args.quick else 4)
        cpu_env = {
            "AIRFLOW_CONN_MRSDEPLOY_DEFAULT": os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"],
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "BENCH_URL": server.url,
            "BENCH_TOKEN": server.login(),
        }
        envs = {kind: cpu_env for kind in POLLERS}
        envs["provider_no_env"] = {
            **cpu_env,
            "AIRFLOW_CONN_MRSDEPLOY_DEFAULT": without_trust_env(
                cpu_env["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"]
            ),
        }
        envs["provider_unfrozen"] = {
            **cpu_env,
            "AIRFLOW__MRSDEPLOY__FREEZE_TRIGGERER_HEAP": "False",
        }
        kinds = [
            kind
            for kind in POLLERS
            if kind not in OPTIONAL_POLLERS or getattr(args, OPTIONAL_POLLERS[kind])
        ]
        pollers: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
        for _ in range(2 if args.quick else CPU_ROUNDS):
            for kind in kinds:
                pollers[kind].append(
                    run_pollers(workdir, kind, args.interval, cpu_window, envs[kind], False)
                )
        profiles = {}
        if args.profile:
            for kind in ("provider", "bare"):
                profiles[kind] = run_pollers(
                    workdir, kind, args.interval, cpu_window, cpu_env, True
                )["profile"]
        for batch_id in batch_ids:
            hook.cancel_batch(SERVICE, VERSION, batch_id)
        finish_rows = 50_000 if args.quick else FINISH_ROWS
        if not args.cpu_only:
            # Started only now: the server running its rows would take CPU from the measures
            # above.
            finished = hook.start_batch(
                WIDE_SERVICE,
                VERSION,
                json.dumps([dict.fromkeys(WIDE_INPUTS, 1.5)] * finish_rows).encode(),
                parallel_count=100,
            )
            while not hook.get_batch_progress(WIDE_SERVICE, VERSION, finished).is_terminal:
                time.sleep(1)
            # Interleaved, best kept: each way once per round.
            finishes = {way: [] for way in FINISH_WAYS}
            for _ in range(2):
                for way in FINISH_WAYS:
                    finishes[way].append(run_finish(workdir, finished, way))
        hook.close()
    if report is not None:
        show_steady(count, args.interval, report)
        show_finish(finish_rows, finishes)
    show_poll_cpu(count, args.interval, cpu_window, pollers, profiles)
    shutil.rmtree(workdir, ignore_errors=True)


def show_steady(count: int, interval: float, report: dict[str, Any]) -> None:
    """Figures of the 1,000 triggers' run."""
    per_poll = (report["cpu"] - report["idle_cpu"]) / max(report["polls"], 1)
    share = per_poll * count / interval
    share_1000 = per_poll * 1000 / interval
    say(f"wait: {count:,} triggers in one event loop, poll interval {interval:g} s")
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
        f"{report['log_lines']:,} log lines written"
    )
    say(
        f"  {count:,} triggers at {interval:g} s cost {share:.2%} of one core "
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


def show_finish(finish_rows: int, finishes: dict[str, list[dict[str, Any]]]) -> None:
    """Figures of the finish measure."""
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


def run_pollers(
    workdir: Path, kind: str, interval: float, window: float, env: dict[str, str], profile: bool
) -> dict[str, Any]:
    """:func:`poll_cpu` in a fresh process."""
    tag = f"cpu-{kind}{'-profile' if profile else ''}"
    report_path = workdir / f"{tag}.json"
    report_path.unlink(missing_ok=True)
    return run_logged(
        "benchmarks.bench_wait",
        [
            *("--child", "--poller", kind, "--batches", str(workdir / "batches.json")),
            *("--report", str(report_path), "--interval", str(interval)),
            *("--window", str(window), *(["--profile"] if profile else [])),
        ],
        workdir / f"{tag}.log",
        report_path,
        **env,
    )


def show_poll_cpu(
    count: int,
    interval: float,
    window: float,
    pollers: dict[str, list[dict[str, Any]]],
    profiles: dict[str, list[str]],
) -> None:
    """Figures of the CPU-per-poll measure."""
    say(
        f"CPU per poll: {count:,} pollers of each kind in one event loop, interval "
        f"{interval:g} s, steady window {window:g} s, loop-lag sampler "
        f"{CPU_PROBE_SECONDS * 1000:g} ms; rounds interleaved, lowest kept"
    )
    best = {kind: min(runs, key=cpu_per_poll) for kind, runs in pollers.items()}
    for kind, runs in pollers.items():
        name, figures = POLLERS[kind], best[kind]
        say(
            f"  {name:<44} {cpu_per_poll(figures) * 1e6:6.0f} µs CPU per poll (rounds: "
            + ", ".join(f"{cpu_per_poll(r) * 1e6:.0f}" for r in runs)
            + f"; {figures['polls']:,} polls, {figures['cpu']:.2f} CPU s of which "
            f"{figures['idle_cpu']:.2f} idle process and sampler ("
            + ", ".join(f"{r['idle_before'] * 100:.1f}/{r['idle_after'] * 100:.1f}%" for r in runs)
            + " of a core before/after), "
            + f"{figures['cpu'] - figures['thread_cpu']:.2f} outside the loop's thread); "
            "worst loop stall "
            + ", ".join(f"{r['worst_stall'] * 1000:.1f}" for r in runs)
            + " ms (p99 "
            + ", ".join(f"{r['p99_stall'] * 1000:.1f}" for r in runs)
            + " ms; longest garbage collection "
            + ", ".join(f"{r['worst_gc'] * 1000:.0f}" for r in runs)
            + " ms, full collections "
            + ", ".join(str(r.get("full_gcs", "?")) for r in runs)
            + " taking at most "
            + ", ".join(f"{r.get('full_gc_cpu', 0.0) * 1000:.0f}" for r in runs)
            + " ms of CPU"
            + "; load average "
            + ", ".join(r["load"] for r in runs)
            + ")"
        )
    medians = {
        kind: statistics.median(cpu_per_poll(r) for r in runs) for kind, runs in pollers.items()
    }
    say(
        "  median of the rounds: "
        + ", ".join(f"{POLLERS[kind]} {value * 1e6:.0f} µs" for kind, value in medians.items())
        + f"; provider / bare {medians['provider'] / medians['bare']:.2f} (the rounds of one "
        "kind can differ by tens of percent: the lowest is the RATIO, the median for context)"
    )
    shares = {kind: cpu_per_poll(best[kind]) * 1000 / interval for kind in pollers}
    say(
        f"  1,000 pollers at {interval:g} s: "
        + ", ".join(f"{POLLERS[kind]} {share:.2%}" for kind, share in shares.items())
        + " of one core"
    )
    for kind, lines in profiles.items():
        say(f"profile of the {POLLERS[kind]} steady window (one extra run):")
        for line in lines:
            say(f"  {line}")
    ratio("wait_cpu_per_poll_vs_bare", cpu_per_poll(best["provider"]) / cpu_per_poll(best["bare"]))
    ratio("wait_cpu_share_1000_triggers", shares["provider"])
    if "provider_no_env" in best:
        ratio(
            "wait_cpu_per_poll_trust_env_off_vs_bare",
            cpu_per_poll(best["provider_no_env"]) / cpu_per_poll(best["bare"]),
        )


if __name__ == "__main__":
    main()
