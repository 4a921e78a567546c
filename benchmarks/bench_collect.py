"""Collect: a 10,000-row batch with one ~10 KB file per row, landed in storage.

Three ways to fetch the same files from the same reference server, one after the other:

- provider: ``MrsDeployCollectBatchOperator.execute`` (results fetched once, files downloaded
  with bounded concurrency and streamed into the destination, outputs table, manifest);
- Microsoft's client, the sequential per-row loop (``list_artifacts`` + ``artifact``);
- raw: a bare aiohttp client with no provider logic, at the same concurrency, making the same
  requests (list a row's files, then fetch each) and discarding the bytes: the server's limit
  for this protocol. A second raw figure skips the listing (names known in advance).

Run: ``python -m benchmarks.bench_collect [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    COMPAT_PYTHON,
    Stopwatch,
    airflow_home,
    connection_env,
    mib,
    parse_args,
    ratio,
    reference_server,
    run_child,
    say,
)

SERVICE, VERSION = "fileService", "v1"
CONCURRENCY = 8  # the Collect operator's default max_concurrent_downloads
ROUNDS = 2


def submit_and_wait(hook: Any, rows: int) -> str:
    """Start the file batch and wait until the server has run every row."""
    import json

    body = json.dumps([{"i": i} for i in range(rows)]).encode()
    batch_id = str(hook.start_batch(SERVICE, VERSION, body, parallel_count=16))
    while True:
        status = hook.get_batch_status(SERVICE, VERSION, batch_id)
        if status.is_terminal:
            if status.state.value != "Complete":
                raise RuntimeError(f"batch ended {status.state.value}")
            return batch_id
        time.sleep(0.5)


class _TaskInstance:
    def xcom_push(self, key: str, value: Any) -> None:
        pass

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return None


def provider_collect(batch_id: str, destination: Path) -> tuple[float, dict[str, Any]]:
    from airflow_provider.operators import MrsDeployCollectBatchOperator

    operator = MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=batch_id,
        destination=str(destination),
        service_name=SERVICE,
        service_version=VERSION,
        max_concurrent_downloads=CONCURRENCY,
    )
    with Stopwatch() as watch:
        result = operator.execute({"ti": _TaskInstance()})  # type: ignore[typeddict-item]
    return watch.wall, result


async def raw_fetch(
    url: str, token: str, batch_id: str, rows: int, names: list[str] | None
) -> tuple[float, int, int]:
    """Fetch every row's files with a bare client; ``names`` skips the listing call."""
    import aiohttp

    base = f"{url}/api/{SERVICE}/{VERSION}/batch/{batch_id}"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(rows):
        queue.put_nowait(index)
    files = size = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal files, size
        while not queue.empty():
            index = queue.get_nowait()
            listed = names
            if listed is None:
                async with session.get(f"{base}/{index}/files") as response:
                    listed = await response.json()
            for name in listed:
                async with session.get(f"{base}/{index}/files/{name}") as response:
                    async for chunk in response.content.iter_chunked(1 << 16):
                        size += len(chunk)
                files += 1

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
        return time.perf_counter() - started, files, size


def breakdown(hook: Any, batch_id: str, landed: Path, rows: int) -> list[str]:
    """Where the provider's collect spends its time, piece by piece (one thread, no overlap).

    Serial phases are timed once on the whole batch; per-file pieces are the mean CPU time over
    a sample of rows, so they can be compared with the raw client's cost per request.
    """
    from airflow.sdk import ObjectStoragePath

    from airflow_provider.outputs import OutputWriter, build_outputs_table

    lines = []
    with Stopwatch() as watch:
        status = hook.get_batch_status(SERVICE, VERSION, batch_id, show_partial_results=False)
    lines.append(f"results of {len(status.results):,} rows fetched and parsed: {watch.wall:.2f} s")
    with Stopwatch() as watch:
        build_outputs_table(status.results, ["value"])
    lines.append(f"outputs table built: {watch.wall:.2f} s")
    writer = OutputWriter(ObjectStoragePath(str(landed)))
    kept = [p.relative_to(landed).as_posix() for p in landed.rglob("*") if p.is_file()]
    with Stopwatch() as watch:
        writer.remove_leftovers(kept)
    lines.append(f"remove_leftovers walking {len(kept):,} files: {watch.wall:.2f} s")
    sample = range(min(rows, 300))
    scratch = OutputWriter(ObjectStoragePath(str(landed.parent / "scratch")))
    scratch.begin()
    pieces: dict[str, Any] = {
        "hook.list_batch_files": lambda i: hook.list_batch_files(SERVICE, VERSION, batch_id, i),
        "hook.iter_batch_file": lambda i: b"".join(
            hook.iter_batch_file(SERVICE, VERSION, batch_id, i, "report.txt")
        ),
        "OutputWriter.write_file": lambda i: scratch.write_file(i, "report.txt", [b"x" * 10240]),
    }
    for name, piece in pieces.items():
        piece(0)
        with Stopwatch() as watch:
            for index in sample:
                piece(index)
        lines.append(
            f"{name}: {watch.cpu / len(sample) * 1000:.2f} ms CPU per call "
            f"({watch.wall / len(sample) * 1000:.2f} ms wall, one at a time)"
        )
    return lines


def main() -> None:
    args = parse_args(__doc__.split("\n", 1)[0])
    rows = 2_000 if args.quick else 10_000
    workdir = Path(tempfile.mkdtemp(prefix="mrsdeploy-bench-collect-"))
    airflow_home()
    with reference_server(workdir, "--max-parallel-count", "100") as server:
        os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"] = connection_env(
            server.url, server.admin_password
        )
        from airflow_provider.hooks import MrsDeployHook

        hook = MrsDeployHook()
        started = time.perf_counter()
        batch_id = submit_and_wait(hook, rows)
        say(
            f"collect: {rows:,} rows, one ~10 KB file each (server ran the batch in "
            f"{time.perf_counter() - started:.1f} s); concurrency {CONCURRENCY}"
        )
        runs: dict[str, list[tuple[float, int, int]]] = {}
        pieces: list[str] = []
        token = server.login()
        # Interleaved rounds, best kept per method: a burst of load from elsewhere on the
        # machine then hits every method alike instead of deciding a ratio.
        for round_number in range(ROUNDS):
            destination = workdir / f"provider-{round_number}"
            seconds, result = provider_collect(batch_id, destination)
            size = sum(f.stat().st_size for f in (destination / "files").rglob("*") if f.is_file())
            runs.setdefault("provider", []).append((seconds, int(result["files"]), size))
            if round_number == 0:
                try:
                    pieces = breakdown(hook, batch_id, destination, rows)
                except Exception as exc:  # the figures stand on their own
                    pieces = [f"breakdown unavailable: {type(exc).__name__}: {exc}"]
            shutil.rmtree(destination, ignore_errors=True)
            if COMPAT_PYTHON.exists():
                report = run_child(
                    [
                        str(COMPAT_PYTHON),
                        *("-m", "benchmarks.ms_client", "collect", "--url", server.url),
                        *("--service", SERVICE, "--version", VERSION, "--batch-id", batch_id),
                        *("--rows", str(rows), "--destination", str(workdir / "ms")),
                    ],
                    BENCH_PASSWORD=server.admin_password,
                )
                runs.setdefault("ms_sequential", []).append(
                    (report["seconds"], report["files"], report["bytes"])
                )
                shutil.rmtree(workdir / "ms", ignore_errors=True)
            runs.setdefault("raw", []).append(
                asyncio.run(raw_fetch(server.url, token, batch_id, rows, None))
            )
            runs.setdefault("raw_no_list", []).append(
                asyncio.run(raw_fetch(server.url, token, batch_id, rows, ["report.txt"]))
            )
        figures = {name: min(found) for name, found in runs.items()}
        for name, found in runs.items():
            say(f"  {name} runs: {', '.join(f'{r[0]:.2f}' for r in found)} s (best kept)")
        hook.close()

    for name, (seconds, files, size) in figures.items():
        say(
            f"  {name:<14} {seconds:7.2f} s  {files / seconds:8,.0f} files/s  "
            f"{size / seconds / 2**20:7.1f} MiB/s  ({files:,} files, {mib(size)})"
        )
    say("  provider collect, piece by piece:")
    for line in pieces:
        say(f"    {line}")
    provider_rate = figures["provider"][1] / figures["provider"][0]
    if "ms_sequential" in figures:
        ms = figures["ms_sequential"]
        ratio("collect_speedup_vs_sequential", provider_rate / (ms[1] / ms[0]))
    raw = figures["raw"]
    ratio("collect_share_of_raw_limit", provider_rate / (raw[1] / raw[0]))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
