"""Large batch, memory: the peak resident memory of reading one very large batch's results.

``MrsDeployHook.get_batch_status(..., show_partial_results=False)``, which Collect called for
each batch, reads the whole answer into memory (at most the connection's
``max_response_bytes``, 256 MiB by default), then decodes it into one typed result per row.
This measures what that costs for one batch of 2,000,000 rows (100,000 with ``--quick``;
``--rows`` to choose) of ``tinyService`` (one integer in, the same integer out: the smallest
answer a row can have, so the batch is cheap to run and its answer stays under the limit),
side by side with the answer read as it arrives.

Each way of reading runs in a fresh process, after its imports and login, interleaved over two
rounds (the lower kept; both printed):

- provider: ``get_batch_status`` (body read whole, then decoded);
- provider, body only: the same request through the hook, the body read whole and not decoded
  (what the read alone holds);
- bare: ``requests.get(...).content``, the same bytes with nothing else (the least a reader of
  the whole answer holds);
- streamed, rows dropped: ``MrsDeployHook.read_batch_results`` (the answer decoded as it
  arrives, a chunk of rows at a time), each chunk counted and dropped: the reader's own memory;
- streamed into the table: the same, each chunk added to an ``OutputsTable`` as Collect's read
  step does: what reading a batch into the outputs table holds.

The streamed ways run only when the hook has ``read_batch_results``. Figures per way: the
process's peak resident memory (the larger of ``VmHWM`` before the read and the read's own
peak; not ``ru_maxrss``, which in a process started by ``exec`` also counts the resident size
its parent had then), what the read added above the resident memory just before it (the
kernel's peak mark reset before the read: ``benchmarks.memory``), what stays resident while
the results are held, and the read's wall and CPU time. With fewer than 2,000,000 rows the
figures for 2,000,000 are extrapolated (linearly per row, labelled as such).

Run: ``python -m benchmarks.bench_large_batch [--quick] [--rows N]``.
"""

from __future__ import annotations

import atexit
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
    load_average,
    mib,
    parse_args,
    ratio,
    reference_server,
    run_logged,
    say,
)

SERVICE, VERSION = "tinyService", "v1"
TARGET_ROWS = 2_000_000
ROUNDS = 2
DEFAULT_MAX_RESPONSE_BYTES = 256 * 2**20  # the connection's default max_response_bytes
#: How each way reads the answer.
WAYS = {
    "provider": "provider, get_batch_status (whole answer, typed decode)",
    "body": "provider, body only (hook request, no decode)",
    "bare": "bare, requests.get(...).content",
    "streamed": "provider, read_batch_results, rows dropped",
    "streamed_table": "provider, read_batch_results into an OutputsTable",
}
#: The ways that need ``MrsDeployHook.read_batch_results``.
STREAMED = ("streamed", "streamed_table")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def read_child(way: str, batch_id: str) -> dict[str, Any]:
    """Read the batch's answer one way, in this fresh process; figures of that read."""
    from benchmarks.memory import PeakMemory

    airflow_home()
    import requests

    from airflow_provider.api import calls
    from airflow_provider.hooks import MrsDeployHook

    hook = MrsDeployHook()
    # Imports, connection, login: before the measure.
    hook.get_batch_progress(SERVICE, VERSION, batch_id)
    url = f"{os.environ['BENCH_URL']}/api/{SERVICE}/{VERSION}/batch/{batch_id}"
    headers = {"Authorization": f"Bearer {os.environ['BENCH_TOKEN']}"}
    requests.get(url, params={"showPartialResults": "false"}, headers=headers, stream=True).close()
    held: Any = None
    # The process's own peak so far (``ru_maxrss`` would also count the parent's resident
    # size, which ``exec`` carries over into the child's figure).
    peak_before = _status_kib("VmHWM")
    cpu, wall = time.process_time(), time.perf_counter()
    with PeakMemory() as memory:
        if way == "provider":
            held = hook.get_batch_status(SERVICE, VERSION, batch_id, show_partial_results=False)
            rows = len(held.results)
        elif way == "body":
            held = hook._call(calls.get_batch(SERVICE, VERSION, batch_id, False)).body
            rows = -1
        elif way in STREAMED:
            from airflow_provider.outputs import OutputsTable

            table = OutputsTable(["y"]) if way == "streamed_table" else None
            counted = [0]

            def take(results: list[Any]) -> None:
                counted[0] += len(results)
                if table is not None:
                    table.add(results)

            hook.read_batch_results(SERVICE, VERSION, batch_id, take)
            held, rows = table, counted[0]
        else:
            response = requests.get(
                url, params={"showPartialResults": "false"}, headers=headers, timeout=600
            )
            response.raise_for_status()
            held = response.content
            del response
            rows = -1
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    report = {
        "rows": rows,
        "seconds": wall,
        "cpu": cpu,
        "added": memory.extra_bytes,
        "method": memory.method,
        "before": memory.before_kib * 1024,
        "held": max(0, _status_kib("VmRSS") - memory.before_kib) * 1024,
        "peak_rss": max(peak_before, memory.peak_kib) * 1024,
    }
    del held
    hook.close()
    return report


def answer_bytes(url: str, token: str, batch_id: str) -> int:
    """Size of the batch's answer, streamed and counted (nothing kept)."""
    import requests

    size = 0
    with requests.get(
        f"{url}/api/{SERVICE}/{VERSION}/batch/{batch_id}",
        params={"showPartialResults": "false"},
        headers={"Authorization": f"Bearer {token}"},
        stream=True,
        timeout=600,
    ) as response:
        response.raise_for_status()
        for chunk in response.iter_content(1 << 20):
            size += len(chunk)
    return size


def body_of(rows: int) -> bytes:
    """The batch's records, ``{"i": <index>}`` each."""
    return b"[" + b",".join(b'{"i":%d}' % i for i in range(rows)) + b"]"


def main() -> None:
    args = parse_args(
        __doc__.split("\n", 1)[0],
        [
            ("--rows", {"type": int, "default": 0, "help": "rows of the batch (2,000,000)"}),
            ("--child", {"help": "(internal) the way to read"}),
            ("--batch-id", {"help": "(internal) the batch"}),
            ("--report", {"help": "(internal) where the child writes its figures"}),
        ],
    )
    if args.child:
        Path(args.report).write_text(json.dumps(read_child(args.child, args.batch_id)))
        return
    rows = args.rows or (100_000 if args.quick else TARGET_ROWS)
    workdir = Path(tempfile.mkdtemp(prefix="mrsdeploy-bench-large-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)  # also when a step fails
    airflow_home()
    runs: dict[str, list[dict[str, Any]]] = {way: [] for way in WAYS}
    with reference_server(workdir, "--max-parallel-count", "100") as server:
        conn = connection_env(server.url, server.admin_password)
        os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"] = conn
        from airflow_provider.hooks import MrsDeployHook

        hook = MrsDeployHook()
        started = time.perf_counter()
        batch_id = hook.start_batch(SERVICE, VERSION, body_of(rows), parallel_count=100)
        submitted = time.perf_counter() - started
        while True:
            progress = hook.get_batch_progress(SERVICE, VERSION, batch_id)
            if progress.is_terminal:
                break
            time.sleep(2)
        if progress.state.value != "Complete":
            raise RuntimeError(f"the batch ended {progress.state.value}")
        ran = time.perf_counter() - started
        hook.close()
        token = server.login()
        size = answer_bytes(server.url, token, batch_id)
        say(
            f"large batch: {rows:,} rows of {SERVICE} (submitted in {submitted:.1f} s, run by "
            f"the server in {ran:.0f} s); its answer is {size:,} bytes ({mib(size)}, "
            f"{size / rows:.0f} bytes per row); load average (1 min) {load_average()}"
        )
        env = {"AIRFLOW_CONN_MRSDEPLOY_DEFAULT": conn, "BENCH_URL": server.url}
        env["BENCH_TOKEN"] = token
        ways = [w for w in WAYS if w not in STREAMED or hasattr(hook, "read_batch_results")]
        runs = {way: [] for way in ways}
        for _ in range(ROUNDS):
            for way in ways:
                report_path = workdir / f"{way}.json"
                report_path.unlink(missing_ok=True)
                runs[way].append(
                    run_logged(
                        "benchmarks.bench_large_batch",
                        ["--child", way, "--batch-id", batch_id, "--report", str(report_path)],
                        workdir / f"{way}.log",
                        report_path,
                        **env,
                    )
                )
    for way in ("provider", *STREAMED):
        if any(r["rows"] != rows for r in runs.get(way, [])):
            raise RuntimeError(f"{way} returned {[r['rows'] for r in runs[way]]} rows")
    best = {way: min(found, key=lambda r: r["added"]) for way, found in runs.items()}
    say(
        f"  reading the whole answer in a fresh process, each way ({ROUNDS} rounds "
        f"interleaved, lower kept; memory by {best['provider']['method']}):"
    )
    for way, found in runs.items():
        name, figures = WAYS[way], best[way]
        say(
            f"  {name:<56} peak RSS {mib(figures['peak_rss']):>10} (rounds: "
            + ", ".join(mib(r["peak_rss"]) for r in found)
            + f"), added by the read {mib(figures['added'])} (rounds: "
            + ", ".join(mib(r["added"]) for r in found)
            + f"), held after {mib(figures['held'])}, {figures['seconds']:.1f} s, "
            f"{figures['cpu']:.1f} CPU s"
        )
    provider = best["provider"]
    if rows < TARGET_ROWS:
        scale = TARGET_ROWS / rows
        say(
            f"  extrapolated to {TARGET_ROWS:,} rows (linear per row, not measured): answer "
            f"{mib(size * scale)}, provider's read adds {mib(provider['added'] * scale)}, "
            f"its process peaks near {mib(provider['before'] + provider['added'] * scale)}"
        )
    say(
        f"  at {size / rows:.0f} bytes per row the answer reaches max_response_bytes "
        f"({mib(DEFAULT_MAX_RESPONSE_BYTES)}, the default) at about "
        f"{DEFAULT_MAX_RESPONSE_BYTES / (size / rows):,.0f} rows; beyond, get_batch_status fails"
    )
    ratio("large_batch_read_added_vs_answer", provider["added"] / size)
    ratio("large_batch_read_added_vs_bare", provider["added"] / max(best["bare"]["added"], 1))
    if "streamed_table" in best:
        ratio(
            "large_batch_streamed_table_vs_whole_read",
            best["streamed_table"]["added"] / max(provider["added"], 1),
        )
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
