"""Collect, CPU: the client's CPU time per file landed, the provider against a bare client.

CPU time, unlike the wall-clock ratios of ``bench_collect``, hardly depends on what else the
machine runs (the server, a proxy, other work sharing its two cores), so this figure compares
across machines and runs. A batch of 10,000 rows (2,000 with ``--quick``), each writing one
~10 KB file (``fileService``), is collected from the reference server by each client in a
fresh process of its own; only that process's CPU is counted (``time.process_time``: user and
system time of all its threads), around the work only (imports, Airflow's start-up and the
server are left out):

- provider: ``MrsDeployCollectBatchOperator.execute`` (``max_concurrent_downloads=8``), its
  landing step timed: ``Collector._aland``, which plans each row's files (names from the
  results' ``changedFiles``), claims the destination and downloads every file through the
  hook's async client (``MrsDeployHook.aiter_batch_file``) into place. The whole ``execute``
  (the results read, outputs table and manifest too) is shown beside it;
- provider, listed: the same with ``file_listing="always"``, so every row's files are also
  listed (``MrsDeployHook.alist_batch_files``): the listing step on its own;
- bare, landed: the bare aiohttp client of ``bench_collect`` (8 connections, names known, one
  request per file) writing each file into a folder per row with plain system calls: the
  floor for any client that lands the files;
- bare, landed as Collect: the same, keeping Collect's two promises about each file (written
  under a temporary name and renamed, so it appears whole or not at all; SHA-256 computed for
  the manifest): what of the provider's figure those promises take;
- bare, listed and landed: the same, listing each row first (two requests per file);
- provider, trust_env off: the provider with the connection extra ``trust_env: false``: what
  honouring the environment (proxy variables) costs per request. (aiohttp, asked to trust the
  environment itself, looks for proxy variables and ``.netrc`` on every request, each time
  in a worker thread: that cost more than half of the provider's CPU per file.)

Then, measured without a server (``benchmarks.cpu_parts``), where the provider's CPU per file
goes beyond the bare client's: the hook's own layers over a transport answering from memory,
and Collect's two promises about a file on the same disk.

Garbage collections during the provider's landing step are timed too (``gc.callbacks``): CPU
the provider causes, counted in its figure.

Each method runs in interleaved rounds (3; 2 with ``--quick``); the lowest CPU per file of
each is kept, and every round is printed. ``--profile`` adds one profiled run of each provider
method and prints where its CPU goes (self time by group, top entries).

Run: ``python -m benchmarks.bench_cpu [--quick] [--profile]``.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import cpu_parts
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

SERVICE, VERSION = "fileService", "v1"
CONCURRENCY = 8
METHODS = {
    "provider": "provider (Collect, names from the results)",
    "provider_listed": "provider, file_listing='always'",
    "bare_landed": "bare client, landed",
    "bare_as_collect": "bare client, landed as Collect (rename, SHA-256)",
    "bare_listed_landed": "bare client, listed and landed",
    "provider_no_env": "provider, connection extra trust_env=false",
}


class _TaskInstance:
    def xcom_push(self, key: str, value: Any) -> None:
        pass

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return None


def provider_child(batch_id: str, destination: Path, listing: str, profile: bool) -> dict[str, Any]:
    """Collect with the operator; CPU of the landing step, split into its phases."""
    from airflow_provider.operators import MrsDeployCollectBatchOperator
    from airflow_provider.operators.collecting import Collector
    from benchmarks.profiling import new_profiler

    phases: dict[str, float] = {}
    profiler = new_profiler() if profile else None
    collections = GcTimer()

    def timed(name: str, original: Any, profiled: bool = False) -> Any:
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if profiled:
                gc.callbacks.append(collections)
                if profiler is not None:
                    profiler.enable()
            cpu, wall = time.process_time(), time.perf_counter()
            thread = time.thread_time()
            try:
                return await original(self, *args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.process_time() - cpu
                phases[f"{name}_thread"] = phases.get(f"{name}_thread", 0.0) + (
                    time.thread_time() - thread
                )
                phases[f"{name}_wall"] = phases.get(f"{name}_wall", 0.0) + (
                    time.perf_counter() - wall
                )
                if profiled:
                    gc.callbacks.remove(collections)
                    if profiler is not None:
                        profiler.disable()

        return wrapper

    Collector._aland = timed("land", Collector._aland, profiled=True)  # type: ignore[method-assign]
    Collector._aplan = timed("plan", Collector._aplan)  # type: ignore[method-assign]
    Collector._aland_files = timed("files", Collector._aland_files)  # type: ignore[method-assign]
    operator = MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=batch_id,
        destination=str(destination),
        service_name=SERVICE,
        service_version=VERSION,
        max_concurrent_downloads=CONCURRENCY,
        file_listing=listing,
    )
    cpu, wall = time.process_time(), time.perf_counter()
    result = operator.execute({"ti": _TaskInstance()})  # type: ignore[typeddict-item]
    report: dict[str, Any] = {
        "execute_cpu": time.process_time() - cpu,
        "execute_wall": time.perf_counter() - wall,
        "files": int(result["files"]),
        "cpu": phases["land"],
        "wall": phases["land_wall"],
        "thread_cpu": phases["land_thread"],
        "gc": collections.total,
        "gc_count": collections.count,
        **{f"phase_{k}": v for k, v in phases.items()},
    }
    if profiler is not None:
        from benchmarks.profiling import summarize

        report["profile"] = summarize(profiler, max(report["files"], 1), "file")
    return report


class GcTimer:
    """Total time of the garbage collections while it is in ``gc.callbacks``."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.total += time.process_time() - self._started
            self.count += 1


def bare_child(
    url: str,
    token: str,
    batch_id: str,
    rows: int,
    destination: Path,
    listed: bool,
    as_collect: bool = False,
) -> dict[str, Any]:
    """The bare client of ``bench_collect``, landing the files; CPU of the whole fetch."""
    import aiohttp  # noqa: F401  (imported before the clock starts, as the provider's is)

    from benchmarks.bench_collect import raw_fetch

    names = None if listed else ["report.txt"]
    cpu, wall, thread = time.process_time(), time.perf_counter(), time.thread_time()
    _seconds, files, size = asyncio.run(
        raw_fetch(url, token, batch_id, rows, names, destination, as_collect=as_collect)
    )
    return {
        "cpu": time.process_time() - cpu,
        "thread_cpu": time.thread_time() - thread,
        "wall": time.perf_counter() - wall,
        "files": files,
        "bytes": size,
    }


def child(args: Any) -> None:
    destination = Path(args.destination)
    if args.child.startswith("provider"):
        airflow_home()
        listing = "always" if args.child == "provider_listed" else "auto"
        report = provider_child(args.batch_id, destination, listing, args.profile)
    else:
        report = bare_child(
            os.environ["BENCH_URL"],
            os.environ["BENCH_TOKEN"],
            args.batch_id,
            args.rows,
            destination,
            listed=args.child == "bare_listed_landed",
            as_collect=args.child == "bare_as_collect",
        )
    Path(args.report).write_text(json.dumps(report))


def run_method(
    workdir: Path, method: str, batch_id: str, rows: int, env: dict[str, str], profile: bool
) -> dict[str, Any]:
    """One method in a fresh process; its destination is removed afterwards."""
    tag = f"{method}{'-profile' if profile else ''}"
    destination = workdir / f"dest-{tag}"
    report_path = workdir / f"{tag}.json"
    report_path.unlink(missing_ok=True)
    try:
        return run_logged(
            "benchmarks.bench_cpu",
            [
                *("--child", method, "--batch-id", batch_id, "--rows", str(rows)),
                *("--destination", str(destination), "--report", str(report_path)),
                *(["--profile"] if profile else []),
            ],
            workdir / f"{tag}.log",
            report_path,
            **env,
        )
    finally:
        shutil.rmtree(destination, ignore_errors=True)


def per_file(report: dict[str, Any], key: str = "cpu") -> float:
    """µs of CPU per file landed."""
    return float(report[key]) / max(int(report["files"]), 1) * 1e6


def main() -> None:
    args = parse_args(
        __doc__.split("\n", 1)[0],
        [
            ("--profile", {"action": "store_true", "help": "profile the provider's landing"}),
            ("--child", {"help": "(internal) the method to run"}),
            ("--batch-id", {"help": "(internal) the batch"}),
            ("--rows", {"type": int, "default": 0, "help": "(internal) rows of the batch"}),
            ("--destination", {"help": "(internal) where the child lands the files"}),
            ("--report", {"help": "(internal) where the child writes its figures"}),
        ],
    )
    if args.child:
        child(args)
        return
    from benchmarks.bench_collect import ram_disk, submit, wait_done

    rows = 2_000 if args.quick else 10_000
    rounds = 2 if args.quick else 3
    workdir = Path(tempfile.mkdtemp(prefix="mrsdeploy-bench-cpu-", dir=ram_disk()))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # also when a step fails
    airflow_home()
    runs: dict[str, list[dict[str, Any]]] = {method: [] for method in METHODS}
    profiles: dict[str, list[str]] = {}
    with reference_server(workdir, "--max-parallel-count", "100") as server:
        conn = connection_env(server.url, server.admin_password)
        os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"] = conn
        from airflow_provider.hooks import MrsDeployHook

        hook = MrsDeployHook()
        started = time.perf_counter()
        batch_id = wait_done(hook, submit(hook, rows))
        hook.close()
        say(
            f"collect CPU: {rows:,} rows, one ~10 KB file each (server ran the batch in "
            f"{time.perf_counter() - started:.1f} s); concurrency {CONCURRENCY}; files and "
            f"server data under {workdir} ({'RAM disk' if ram_disk() else 'temporary folder'})"
        )
        env = {
            "AIRFLOW_CONN_MRSDEPLOY_DEFAULT": conn,
            "BENCH_URL": server.url,
            "BENCH_TOKEN": server.login(),
        }
        no_env = {**env, "AIRFLOW_CONN_MRSDEPLOY_DEFAULT": without_trust_env(conn)}
        load_before = load_average()
        for _ in range(rounds):
            for method in METHODS:
                method_env = no_env if method == "provider_no_env" else env
                runs[method].append(run_method(workdir, method, batch_id, rows, method_env, False))
        load_after = load_average()
        if args.profile:
            for method in ("provider", "provider_no_env", "provider_listed"):
                method_env = no_env if method == "provider_no_env" else env
                profiled = run_method(workdir, method, batch_id, rows, method_env, True)
                profiles[method] = profiled["profile"]
    best = {method: min(found, key=per_file) for method, found in runs.items()}
    for method, found in runs.items():
        if any(r["files"] != rows for r in found):
            raise RuntimeError(f"{method} landed {[r['files'] for r in found]} files, not {rows}")
    say(
        "client CPU per file landed (µs; each round, lowest kept), wall time of the same step; "
        f"load average (1 min) {load_before} before the rounds, {load_after} after:"
    )
    for method, name in METHODS.items():
        rounds_text = ", ".join(f"{per_file(r):.0f}" for r in runs[method])
        say(
            f"  {name:<50} {per_file(best[method]):6.0f} µs/file  (rounds: {rounds_text}; "
            f"{per_file(best[method], 'thread_cpu'):.0f} µs of it in the loop's thread; "
            f"{best[method]['wall']:.2f} s wall, {best[method]['files']:,} files)"
        )
    provider, listed = best["provider"], best["provider_listed"]
    plan = provider["phase_plan"] / rows * 1e6
    files = provider["phase_files"] / rows * 1e6
    say(
        f"  provider landing, by phase: plan {plan:.0f} µs, claim destination and close "
        f"{per_file(provider) - plan - files:.0f} µs, downloads and writes {files:.0f} µs per file"
    )
    say(
        "  of the provider's landing, garbage collection: "
        + ", ".join(
            f"{r['gc'] / rows * 1e6:.0f} µs/file ({r['gc_count']} collections)"
            for r in runs["provider"]
        )
    )
    say(
        "  provider whole execute (results read, table, manifest too): "
        + ", ".join(f"{per_file(r, 'execute_cpu'):.0f}" for r in runs["provider"])
        + " µs/file"
    )
    list_provider = listed["phase_plan"] / rows * 1e6
    list_bare = per_file(best["bare_listed_landed"]) - per_file(best["bare_landed"])
    listed_rounds = ", ".join(
        f"{r['phase_plan'] / rows * 1e6:.0f}" for r in runs["provider_listed"]
    )
    say(
        f"  listing one row's files: provider {list_provider:.0f} µs (rounds: {listed_rounds}), "
        f"bare {list_bare:.0f} µs (bare listed and landed minus bare landed)"
    )
    for line in cpu_parts.lines(workdir):
        say(line)
    for method, lines in profiles.items():
        say(f"profile of {METHODS[method]} (landing step only, one extra run):")
        for line in lines:
            say(f"  {line}")
    ratio("collect_cpu_per_file_vs_bare", per_file(provider) / per_file(best["bare_landed"]))
    ratio(
        "collect_cpu_per_file_vs_bare_as_collect",
        per_file(provider) / per_file(best["bare_as_collect"]),
    )
    ratio("collect_list_cpu_per_row_vs_bare", list_provider / max(list_bare, 1e-3))
    ratio(
        "collect_cpu_per_file_trust_env_off_vs_bare",
        per_file(best["provider_no_env"]) / per_file(best["bare_landed"]),
    )
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
