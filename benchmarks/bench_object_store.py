"""Object store: landing files and the outputs table on S3, written directly vs moved into place.

The collect writer (``OutputWriter``) lands, on moto's S3-compatible server on loopback (its
own process, counting every request it receives):

- small files: ``FILES`` files of ~10 KB, eight at a time through ``awrite_file`` as Collect
  does;
- large files: ``LARGE`` files of 24 MiB, streamed in 1 MiB chunks;
- the outputs table as CSV (``ROWS`` rows).

Two ways, in interleaved rounds (old, new, old, new...):

- old: what the writer did before, kept here as the baseline. Every file is written under a
  temporary key and moved into place (``fs.mv``: on S3 a HEAD and listings, a CopyObject and a
  DeleteObjects per file), a HeadBucket per row folder, and the CSV table rendered as one
  string before it is written;
- new: the writer as it is: each file written straight to its final key (one PUT, or a
  multipart upload completed at the end), the CSV rendered and uploaded a slice at a time.

Figures: wall-clock of each phase (best of the rounds, and every round), the requests the
server received per phase, and the peak memory the CSV write added (``benchmarks.memory``).
RATIO lines: old/new wall-clock of each phase, old/new requests per small file, and new/old
peak memory of the CSV write.

Run: ``python -m benchmarks.bench_object_store [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from benchmarks.common import (
    Stopwatch,
    airflow_home,
    load_average,
    mib,
    parse_args,
    process_with_url,
    python,
    ratio,
    run_child,
    say,
)
from benchmarks.memory import PeakMemory

BUCKET = "bench-outputs"
CONN_ID = "moto_bench"
CONCURRENCY = 8  # Collect's default max_concurrent_downloads
SMALL_BYTES = 10 * 1024
LARGE_BYTES = 24 << 20
CHUNK = 1 << 20
WAYS = ("old", "new")


def use_old_way(writer: Any) -> None:
    """The baseline: a temporary object moved into place, as the writer did before."""
    from airflow_provider.outputs.storage import FsspecFileOps

    writer._files = FsspecFileOps(writer.destination.fs, writer._temporary_for)


def old_csv(rendered: Any) -> None:
    """The baseline CSV: the whole table rendered as one string, then written."""

    def write(handle: Any) -> None:
        handle.write(rendered._table.to_csv(index=False).encode("utf-8"))

    rendered._write_csv = write


def csv_table(rows: int) -> Any:
    """An outputs table of ``rows`` rows: a decimal, a text and a flag per row."""
    from airflow_provider.api import ExecutionResult
    from airflow_provider.outputs import OutputFormat, OutputsTable, RenderedTable

    table = OutputsTable(["score", "label", "flag"])
    table.add(
        [
            ExecutionResult(
                True,
                output_parameters={"score": i / 7, "label": f"row {i}, ok", "flag": i % 2 == 0},
            )
            for i in range(rows)
        ]
    )
    return RenderedTable(table.build(), OutputFormat.CSV)


async def _chunks(size: int, fill: bytes) -> AsyncIterator[bytes]:
    for start in range(0, size, CHUNK):
        yield fill * min(CHUNK, size - start)


async def _land(writer: Any, planned: list[Any], size: int) -> None:
    """Land ``planned`` files of ``size`` bytes, ``CONCURRENCY`` at a time."""
    pending = iter(planned)

    async def worker() -> None:
        for item in pending:
            await writer.awrite_file(item, _chunks(size, b"x"))

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def one_run(way: str, endpoint: str, files: int, large: int, rendered: Any) -> dict[str, Any]:
    """One whole run of ``way``: seconds and requests per phase, peak memory of the CSV."""
    from airflow.sdk import ObjectStoragePath

    from airflow_provider.outputs import OutputFormat, build_manifest, plan_row_files
    from airflow_provider.outputs.writer import OutputWriter
    from tests.outputs.s3_server import fetch_counts

    prefix = f"{way}-{uuid.uuid4().hex[:8]}"
    writer = OutputWriter(ObjectStoragePath(f"s3://{CONN_ID}@{BUCKET}/{prefix}/"))
    if way == "old":
        use_old_way(writer)
        old_csv(rendered)
    small = [f for i in range(files) for f in plan_row_files(i, ["report.txt"])]
    big = [f for i in range(files, files + large) for f in plan_row_files(i, ["model.bin"])]
    report: dict[str, Any] = {"prefix": prefix}
    fetch_counts(endpoint, reset=True)
    writer.begin([rendered.name, *(f.path for f in small + big)])
    fetch_counts(endpoint, reset=True)
    with Stopwatch() as watch:
        asyncio.run(_land(writer, small, SMALL_BYTES))
    report["small"] = (watch.wall, fetch_counts(endpoint, reset=True))
    with Stopwatch() as watch:
        asyncio.run(_land(writer, big, LARGE_BYTES))
    report["large"] = (watch.wall, fetch_counts(endpoint, reset=True))
    with Stopwatch() as watch:
        writer.write_table(rendered)
    report["csv"] = (watch.wall, fetch_counts(endpoint, reset=True))
    report["csv_bytes"] = writer.destination.fs.size(f"{BUCKET}/{prefix}/{rendered.name}")
    writer.remove_leftovers([rendered.name, *(f.path for f in small + big)])
    writer.finish(
        build_manifest(
            batch_ids=["b"],
            service_name="s",
            service_version="v",
            table_path=rendered.name,
            output_format=OutputFormat.CSV,
            rows=rendered.rows,
            failed_rows=0,
            files=[],
        )
    )
    return report


def csv_memory_child(way: str, rows: int) -> dict[str, Any]:
    """In a fresh process (the server's address in the environment): the peak memory writing
    the CSV table adds, so memory an earlier step freed but kept cannot hide it."""
    from airflow.sdk import ObjectStoragePath

    from airflow_provider.outputs.writer import OutputWriter

    rendered = csv_table(rows)
    writer = OutputWriter(
        ObjectStoragePath(f"s3://{CONN_ID}@{BUCKET}/mem-{way}-{uuid.uuid4().hex[:8]}/")
    )
    if way == "old":
        use_old_way(writer)
        old_csv(rendered)
    writer.begin([rendered.name])
    with PeakMemory() as memory:
        writer.write_table(rendered)
    return {"added": memory.extra_bytes, "method": memory.method}


def clear(client: Any, prefix: str) -> None:
    """Delete a run's objects (the server holds them in memory)."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": objects})


def requests(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in sorted(counts.items())) or "none"


def main() -> None:
    args = parse_args(
        __doc__.split("\n", 1)[0],
        [
            ("--child", {"help": "(internal) measure the CSV write's memory of this way"}),
            ("--rows", {"type": int, "default": 0, "help": "(internal) rows of the table"}),
        ],
    )
    if args.child:
        print(json.dumps(csv_memory_child(args.child, args.rows)), flush=True)
        return
    files, large, rows = (300, 1, 200_000) if args.quick else (2_000, 3, 1_000_000)
    rounds = 2 if args.quick else 3
    airflow_home()
    import boto3

    from tests.outputs.s3_server import server_environment

    with process_with_url([python(), "-m", "tests.outputs.s3_server"]) as endpoint:
        os.environ.update(server_environment(endpoint, CONN_ID))
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        rendered = {way: csv_table(rows) for way in WAYS}
        say(
            f"object store: moto's S3 server on loopback (own process); {files:,} files of "
            f"{SMALL_BYTES // 1024} KB, {large} of {mib(LARGE_BYTES)}, a CSV table of "
            f"{rows:,} rows; {rounds} rounds; load average (1 min) {load_average()}"
        )
        runs: dict[str, list[dict[str, Any]]] = {way: [] for way in WAYS}
        for round_number in range(rounds):
            for way in WAYS:
                report = one_run(way, endpoint, files, large, rendered[way])
                clear(client, report["prefix"])
                command = [python(), "-m", "benchmarks.bench_object_store", "--child", way]
                child = run_child(
                    [*command, "--rows", str(rows)],
                    timeout=1800,
                    **server_environment(endpoint, CONN_ID),
                )
                report["csv_memory"] = child["added"]
                runs[way].append(report)
            say(f"  round {round_number + 1} done; load average (1 min) {load_average()}")
    best: dict[str, dict[str, float]] = {way: {} for way in WAYS}
    for way in WAYS:
        for phase in ("small", "large", "csv"):
            seconds = [run[phase][0] for run in runs[way]]
            best[way][phase] = min(seconds)
            counts = runs[way][-1][phase][1]
            say(
                f"  {way} {phase:<5} best {min(seconds):6.2f} s (runs: "
                f"{', '.join(f'{s:.2f}' for s in seconds)}); requests: {requests(counts)}"
            )
        memory = [run["csv_memory"] for run in runs[way]]
        csv_bytes = runs[way][-1]["csv_bytes"]
        best[way]["csv_memory"] = min(memory)
        best[way]["small_requests"] = sum(runs[way][-1]["small"][1].values()) / files
        say(
            f"  {way} csv ({mib(csv_bytes)}) peak memory added: "
            f"{', '.join(mib(m) for m in memory)}; "
            f"requests per small file: {best[way]['small_requests']:.1f}"
        )
    say(
        f"  small files per second: old {files / best['old']['small']:,.0f}, "
        f"new {files / best['new']['small']:,.0f}"
    )
    ratio("object_store_small_files_speedup", best["old"]["small"] / best["new"]["small"])
    ratio("object_store_large_files_speedup", best["old"]["large"] / best["new"]["large"])
    ratio("object_store_csv_speedup", best["old"]["csv"] / best["new"]["csv"])
    ratio(
        "object_store_requests_per_file_old_vs_new",
        best["old"]["small_requests"] / best["new"]["small_requests"],
    )
    ratio(
        "object_store_csv_memory_new_vs_old",
        best["new"]["csv_memory"] / max(best["old"]["csv_memory"], 1),
    )


if __name__ == "__main__":
    main()
