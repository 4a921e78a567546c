"""Collect: a 10,000-row batch with one ~10 KB file per row, landed in storage.

Three ways to fetch the same files from the same reference server, one after the other:

- provider: ``MrsDeployCollectBatchOperator.execute`` (results fetched once, each row's file
  names taken from its result's ``changedFiles``, one request per file, downloads on one event
  loop with ``max_concurrent_downloads=8`` streamed into the destination, outputs table,
  manifest);
- Microsoft's client, the sequential per-row loop (``list_artifacts`` + ``artifact``: two
  requests per row, one at a time);
- raw: a bare aiohttp client with no provider logic, at the same concurrency, fetching the same
  files (names known in advance, one request per file) and discarding the bytes: the server's
  limit for what the provider asks of it. A second raw figure lists each row's files first
  (two requests per file, the protocol Microsoft's client follows), shown for context. A
  third, raw landed, also writes each file into a folder per row on the same disk as the
  provider's destination, with plain system calls and nothing else: the floor for any client
  that lands the files, since creating a folder and a file costs far more than a request on
  some disks. A fourth, raw landed as Collect, also keeps Collect's two promises about each
  file (it appears whole or not at all: a temporary name, then a rename; its SHA-256 goes in
  the manifest), for context: what of the provider's cost is those promises.

Two measures:

- loopback: the client talks to the server directly. The network costs nothing, so every
  method is bound by CPU (client and server share the machine's cores) and the ratio against
  the sequential loop compares CPU per file, not the waiting that concurrency removes.
- over a link: the same three methods through ``benchmarks.latency_proxy``, which holds each
  direction's bytes for half of ``LINK_RTT_MS`` so every request and response costs one round
  trip more, as between a worker and a web node in the same region. The sequential loop waits
  two round trips per row; concurrent downloads overlap them. The round trip the proxy adds is
  measured (one small request at a time, through it and direct) and its hold lowered by its own
  forwarding cost so the measured figure is ``LINK_RTT_MS``. It uses the loopback batch (10,000
  rows; 2,000 with ``--quick``). The provider keeps ``max_concurrent_downloads=8``.

Besides the ratios of the provider, one of the bare client that lands the files against the
sequential loop: the most any single-process client that lands the files reaches on loopback.

Each measure runs its methods in interleaved rounds (three on loopback, two over the link) and
keeps each method's best.

Run: ``python -m benchmarks.bench_collect [--quick]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import statistics
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
    process_with_url,
    python,
    ratio,
    reference_server,
    run_child,
    say,
)

SERVICE, VERSION = "fileService", "v1"
CONCURRENCY = 8  # max_concurrent_downloads, the same on loopback and over the link
#: Rounds on loopback: the provider's first collect in the process is a cold start (its
#: imports and first connection, about 0.8 s more on 10,000 files), so a third round gives it
#: two warm ones, like the bare clients, whose process is warm from the start.
LOOPBACK_ROUNDS = 3
LINK_ROUNDS = 2  # over the link every method waits on the network: its rounds agree closely
LINK_RTT_MS = 2.0  # round trip the proxy adds: a worker and a web node in the same region
LINK_CONN_ID = "mrsdeploy_link"  # the connection through the proxy
RTT_SAMPLES = 200
Figure = tuple[float, int, int]  # seconds, files, bytes


def submit(hook: Any, rows: int) -> str:
    """Start a file batch of ``rows`` rows."""
    import json

    body = json.dumps([{"i": i} for i in range(rows)]).encode()
    return str(hook.start_batch(SERVICE, VERSION, body, parallel_count=16))


def wait_done(hook: Any, batch_id: str) -> str:
    """Wait until the server has run every row of the batch."""
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


def provider_collect(
    batch_id: str, destination: Path, conn_id: str = "mrsdeploy_default"
) -> tuple[float, dict[str, Any]]:
    from airflow_provider.operators import MrsDeployCollectBatchOperator

    operator = MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=batch_id,
        destination=str(destination),
        service_name=SERVICE,
        service_version=VERSION,
        max_concurrent_downloads=CONCURRENCY,
        mrsdeploy_conn_id=conn_id,
    )
    with Stopwatch() as watch:
        result = operator.execute({"ti": _TaskInstance()})  # type: ignore[typeddict-item]
    return watch.wall, result


def provider_figure(batch_id: str, destination: Path, conn_id: str) -> Figure:
    """The provider's collect: seconds, files and bytes landed."""
    seconds, result = provider_collect(batch_id, destination, conn_id)
    size = sum(f.stat().st_size for f in (destination / "files").rglob("*") if f.is_file())
    return seconds, int(result["files"]), size


def ms_sequential(url: str, password: str, batch_id: str, rows: int, destination: Path) -> Figure:
    """Microsoft's client's per-row loop, in its own virtualenv."""
    report = run_child(
        [
            str(COMPAT_PYTHON),
            *("-m", "benchmarks.ms_client", "collect", "--url", url),
            *("--service", SERVICE, "--version", VERSION, "--batch-id", batch_id),
            *("--rows", str(rows), "--destination", str(destination)),
        ],
        BENCH_PASSWORD=password,
    )
    shutil.rmtree(destination, ignore_errors=True)
    return report["seconds"], report["files"], report["bytes"]


async def raw_fetch(
    url: str,
    token: str,
    batch_id: str,
    rows: int,
    names: list[str] | None,
    land: Path | None = None,
    *,
    as_collect: bool = False,
) -> Figure:
    """Fetch every row's files with a bare client; ``names`` skips the listing call.

    With ``land``, each file is also written to ``land/files/<index>/<name>`` with plain
    system calls on the loop (a folder per row, one open and write, no temporary name, no
    checksum): the least any client that lands the files on this disk must do.

    ``as_collect`` lands each file with the two guarantees Collect gives and the plain landing
    does not: it appears whole or not at all (written under a temporary name, created
    exclusively, then renamed) and its SHA-256 is known for the manifest. The floor for a client
    that keeps Collect's promises, for context beside the plain one.
    """
    import aiohttp

    base = f"{url}/api/{SERVICE}/{VERSION}/batch/{batch_id}"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    digests: list[str] = []
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
                body = []
                async with session.get(f"{base}/{index}/files/{name}") as response:
                    async for chunk in response.content.iter_chunked(1 << 16):
                        size += len(chunk)
                        if land is not None:
                            body.append(chunk)
                if land is not None:
                    folder = land / "files" / str(index)
                    os.makedirs(folder, exist_ok=True)
                    if as_collect:
                        digests.append(land_as_collect(folder, name, body))
                    else:
                        with open(folder / name, "wb") as handle:
                            handle.write(b"".join(body))
                files += 1

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
        return time.perf_counter() - started, files, size


def land_as_collect(folder: Path, name: str, body: list[bytes]) -> str:
    """Write one file under a temporary name (created exclusively), hash it, rename it into
    place; return its SHA-256."""
    temporary = folder / f".{name}.{os.getpid()}.tmp"
    digest = hashlib.sha256()
    with open(temporary, "xb") as handle:
        for chunk in body:
            digest.update(chunk)
            handle.write(chunk)
    os.replace(temporary, folder / name)
    return digest.hexdigest()


async def round_trip(url: str, token: str, batch_id: str, samples: int) -> float:
    """Median seconds of one small request and its response, one at a time, kept alive."""
    import aiohttp

    target = f"{url}/api/{SERVICE}/{VERSION}/batch/{batch_id}/0/files"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    times = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(samples + 5):
            started = time.perf_counter()
            async with session.get(target) as response:
                await response.read()
            times.append(time.perf_counter() - started)
    return statistics.median(times[5:])


def breakdown(hook: Any, batch_id: str, landed: Path, rows: int) -> list[str]:
    """Where the provider's collect spends its time, piece by piece (one thread, no overlap).

    Serial phases are timed once on the whole batch; per-file pieces are the mean CPU time over
    a sample of rows, so they can be compared with the raw client's cost per request.
    """
    from airflow.sdk import ObjectStoragePath

    from airflow_provider.outputs import OutputsTable, OutputWriter, plan_row_files

    lines = []
    with Stopwatch() as watch:
        status = hook.get_batch_status(SERVICE, VERSION, batch_id, show_partial_results=False)
    lines.append(f"results of {len(status.results):,} rows fetched and parsed: {watch.wall:.2f} s")
    with Stopwatch() as watch:
        table = OutputsTable(["value"])
        table.add(status.results)
        table.build()
    lines.append(f"outputs table built: {watch.wall:.2f} s")
    kept = [p.relative_to(landed).as_posix() for p in landed.rglob("*") if p.is_file()]
    with OutputWriter(ObjectStoragePath(str(landed))) as claimer, Stopwatch() as watch:
        claimer.begin(kept)
    lines.append(f"destination listed and checked against {len(kept):,} files: {watch.wall:.2f} s")
    sample = range(min(rows, 300))
    scratch = OutputWriter(ObjectStoragePath(str(landed.parent / "scratch")))
    planned = {i: plan_row_files(i, ["report.txt"])[0] for i in range(rows)}
    with scratch:
        scratch.begin(f.path for f in planned.values())
        lines += _time_pieces(hook, batch_id, scratch, planned, sample)
    return lines


def _time_pieces(
    hook: Any, batch_id: str, scratch: Any, planned: dict[int, Any], sample: range
) -> list[str]:
    """CPU and wall time per call of each piece of a collect, one call at a time."""
    lines = []
    pieces: dict[str, Any] = {
        "hook.list_batch_files": lambda i: hook.list_batch_files(SERVICE, VERSION, batch_id, i),
        "hook.iter_batch_file": lambda i: b"".join(
            hook.iter_batch_file(SERVICE, VERSION, batch_id, i, "report.txt")
        ),
        "OutputWriter.write_file": lambda i: scratch.write_file(planned[i], [b"x" * 10240]),
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


def open_link(
    stack: contextlib.ExitStack, server_url: str, token: str, batch_id: str
) -> tuple[str, float, float, float]:
    """Start the latency proxy so a request and its response take ``LINK_RTT_MS`` more.

    The proxy's own forwarding (two more hops on loopback, a wake-up each way) comes on top of
    the delay it holds; measured once, it is taken off the setting. Returns the proxy's URL,
    its setting (ms) and the median round trip direct and the one added (s).
    """
    direct = asyncio.run(round_trip(server_url, token, batch_id, RTT_SAMPLES))
    setting = LINK_RTT_MS
    for attempt in range(2):
        proxy = stack.enter_context(
            process_with_url(
                [
                    python(),
                    *("-m", "benchmarks.latency_proxy", "--listen-port", "0"),
                    *("--target-port", server_url.rsplit(":", 1)[1]),
                    *("--delay-ms", f"{setting:.3f}"),
                ]
            )
        )
        linked = asyncio.run(round_trip(proxy, token, batch_id, RTT_SAMPLES))
        added = linked - direct
        excess = added * 1000 - LINK_RTT_MS
        if attempt == 1 or abs(excess) <= 0.03 * LINK_RTT_MS:
            break
        stack.close()
        setting = min(LINK_RTT_MS, max(0.0, setting - excess))
    return proxy, setting, direct, added


def show(figures: dict[str, Figure], runs: dict[str, list[Figure]]) -> None:
    for name, found in runs.items():
        say(f"  {name} runs: {', '.join(f'{r[0]:.2f}' for r in found)} s (best kept)")
    for name, (seconds, files, size) in figures.items():
        say(
            f"  {name:<22} {seconds:7.2f} s  {files / seconds:8,.0f} files/s  "
            f"{size / seconds / 2**20:7.1f} MiB/s  ({files:,} files, {mib(size)})"
        )


def ram_disk() -> str | None:
    """``/dev/shm`` when it is a writable folder, else None (the system's temporary folder).

    Every method that lands files writes them there, and so does the server: the measure is
    of the clients, not of the machine's disk. On a virtual machine's disk, creating a folder
    and a file for each row costs several hundred microseconds and varies with whatever was
    written or deleted just before, which would decide the ratios.
    """
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def best(runs: dict[str, list[Figure]]) -> dict[str, Figure]:
    return {name: min(found) for name, found in runs.items()}


def rate(figure: Figure) -> float:
    return figure[1] / figure[0]


def main() -> None:
    args = parse_args(__doc__.split("\n", 1)[0])
    rows = 2_000 if args.quick else 10_000
    workdir = Path(tempfile.mkdtemp(prefix="mrsdeploy-bench-collect-", dir=ram_disk()))
    say(f"files written under {workdir} ({'RAM disk' if ram_disk() else 'the temporary folder'})")
    airflow_home()
    with reference_server(workdir, "--max-parallel-count", "100") as server:
        os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"] = connection_env(
            server.url, server.admin_password
        )
        from airflow_provider.hooks import MrsDeployHook

        hook = MrsDeployHook()
        started = time.perf_counter()
        batch_id = submit(hook, rows)
        wait_done(hook, batch_id)
        say(
            f"collect: {rows:,} rows, one ~10 KB file each (server ran the batch in "
            f"{time.perf_counter() - started:.1f} s); concurrency {CONCURRENCY}"
        )
        runs: dict[str, list[Figure]] = {}
        pieces: list[str] = []
        token = server.login()
        # Interleaved rounds, best kept per method: a burst of load from elsewhere on the
        # machine then hits every method alike instead of deciding a ratio.
        for round_number in range(LOOPBACK_ROUNDS):
            destination = workdir / f"provider-{round_number}"
            runs.setdefault("provider", []).append(
                provider_figure(batch_id, destination, "mrsdeploy_default")
            )
            if round_number == 0:
                try:
                    pieces = breakdown(hook, batch_id, destination, rows)
                except Exception as exc:  # the figures stand on their own
                    pieces = [f"breakdown unavailable: {type(exc).__name__}: {exc}"]
            shutil.rmtree(destination, ignore_errors=True)
            if COMPAT_PYTHON.exists():
                runs.setdefault("ms_sequential", []).append(
                    ms_sequential(server.url, server.admin_password, batch_id, rows, workdir / "ms")
                )
            runs.setdefault("raw", []).append(
                asyncio.run(raw_fetch(server.url, token, batch_id, rows, None))
            )
            runs.setdefault("raw_no_list", []).append(
                asyncio.run(raw_fetch(server.url, token, batch_id, rows, ["report.txt"]))
            )
            landing = workdir / f"raw-landed-{round_number}"
            runs.setdefault("raw_landed", []).append(
                asyncio.run(raw_fetch(server.url, token, batch_id, rows, ["report.txt"], landing))
            )
            shutil.rmtree(landing, ignore_errors=True)
            runs.setdefault("raw_landed_as_collect", []).append(
                asyncio.run(
                    raw_fetch(
                        server.url, token, batch_id, rows, ["report.txt"], landing, as_collect=True
                    )
                )
            )
            shutil.rmtree(landing, ignore_errors=True)
        figures = best(runs)
        show(figures, runs)
        say("  provider collect, piece by piece:")
        for line in pieces:
            say(f"    {line}")

        with contextlib.ExitStack() as link_stack:
            link_url, setting, direct, added = open_link(link_stack, server.url, token, batch_id)
            os.environ[f"AIRFLOW_CONN_{LINK_CONN_ID.upper()}"] = connection_env(
                link_url, server.admin_password
            )
            say(
                f"over a link of {LINK_RTT_MS:g} ms round trip (latency proxy): one request and "
                f"its response take {added * 1000:.2f} ms more through it than direct "
                f"({direct * 1000:.2f} ms), median of {RTT_SAMPLES}; the proxy holds "
                f"{setting:.2f} ms, its own forwarding makes up the rest"
            )
            say(
                f"  the same {rows:,} rows over the link; provider concurrency {CONCURRENCY}, "
                "as on loopback"
            )
            link_runs: dict[str, list[Figure]] = {}
            for round_number in range(LINK_ROUNDS):
                destination = workdir / f"provider-link-{round_number}"
                link_runs.setdefault("provider", []).append(
                    provider_figure(batch_id, destination, LINK_CONN_ID)
                )
                shutil.rmtree(destination, ignore_errors=True)
                if COMPAT_PYTHON.exists():
                    link_runs.setdefault("ms_sequential", []).append(
                        ms_sequential(
                            link_url,
                            server.admin_password,
                            batch_id,
                            rows,
                            workdir / "ms",
                        )
                    )
                link_runs.setdefault("raw_no_list", []).append(
                    asyncio.run(raw_fetch(link_url, token, batch_id, rows, ["report.txt"]))
                )
        link_figures = best(link_runs)
        show(link_figures, link_runs)
        hook.close()

    link = f"_{LINK_RTT_MS:g}ms_rtt"
    if "ms_sequential" in figures:
        ratio(
            "collect_speedup_vs_sequential",
            rate(figures["provider"]) / rate(figures["ms_sequential"]),
        )
        ratio(
            "collect_raw_landed_vs_sequential",
            rate(figures["raw_landed"]) / rate(figures["ms_sequential"]),
        )
    ratio("collect_share_of_raw_limit", rate(figures["provider"]) / rate(figures["raw_no_list"]))
    ratio("collect_share_of_raw_list_and_get", rate(figures["provider"]) / rate(figures["raw"]))
    ratio(
        "collect_share_of_raw_landing_files",
        rate(figures["provider"]) / rate(figures["raw_landed"]),
    )
    ratio(
        "collect_share_of_raw_landing_files_as_collect",
        rate(figures["provider"]) / rate(figures["raw_landed_as_collect"]),
    )
    if "ms_sequential" in link_figures:
        ratio(
            f"collect_speedup_vs_sequential{link}",
            rate(link_figures["provider"]) / rate(link_figures["ms_sequential"]),
        )
    ratio(
        f"collect_share_of_raw_limit{link}",
        rate(link_figures["provider"]) / rate(link_figures["raw_no_list"]),
    )
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
