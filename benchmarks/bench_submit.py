"""Submit: encode and send 1,000,000 rows x 11 numeric columns, three clients side by side.

- provider: ``prepare_records`` + ``MrsDeployHook.start_batch`` streaming
  ``iter_encoded_records`` (what the Submit operator does);
- naive: ``df.to_dict("records")`` + ``json.dumps`` + ``requests.post``;
- Microsoft's client: ``service.batch(df)`` + ``start()``.

All three send to the same loopback sink (:mod:`benchmarks.sink`), which reads and discards the
body and answers 202, so the times are the clients'. Each client runs in its own process, after
its imports, its login and building the DataFrame; its time runs from the first step of encoding
to the 202, and its memory figure is its peak resident memory during that span above what it
held just before (see :mod:`benchmarks.memory`). Then the reference server's own ingest time of
the provider's body is measured on its own line.

Run: ``python -m benchmarks.bench_submit [--quick]``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    COMPAT_PYTHON,
    mib,
    parse_args,
    process_with_url,
    python,
    ratio,
    reference_server,
    run_child,
    say,
)
from benchmarks.memory import PeakMemory

SERVICE, VERSION = "wideService", "v1"
SINK_PASSWORD = "sink-password"
REPEATS = 2


def make_columns(rows: int, seed: int = 20260301) -> dict[str, np.ndarray]:
    """Eleven numeric columns: eight full-precision floats of varied magnitude, two prices
    rounded to cents, one integer count."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {
        f"x{i}": rng.normal(size=rows) * 10.0 ** (i - 3) for i in range(8)
    }
    columns["x8"] = np.round(rng.uniform(0, 1000, size=rows), 2)
    columns["x9"] = np.round(rng.uniform(-50, 50, size=rows), 2)
    columns["x10"] = rng.integers(0, 100_000, size=rows, dtype=np.int64)
    return columns


def load_frame(path: str) -> Any:
    import pandas as pd

    with np.load(path) as data:
        return pd.DataFrame({name: data[name] for name in data.files})


# -- the clients (each in its own process) ------------------------------------------------------


def provider_client(url: str, data: str) -> dict[str, Any]:
    from benchmarks.common import airflow_home, connection_env

    airflow_home()
    os.environ["AIRFLOW_CONN_MRSDEPLOY_DEFAULT"] = connection_env(url, SINK_PASSWORD)
    from airflow_provider.hooks import MrsDeployHook
    from airflow_provider.records import iter_encoded_records, prepare_records

    frame = load_frame(data)
    hook = MrsDeployHook()
    service = hook.get_service(SERVICE, VERSION)  # logs in: not part of the measure
    with PeakMemory() as memory:
        started = time.perf_counter()
        prepared = prepare_records(frame, service.input_parameters)
        batch_id = hook.start_batch(
            SERVICE, VERSION, lambda: iter_encoded_records(prepared), parallel_count=10
        )
        seconds = time.perf_counter() - started
    body_bytes = sum(len(chunk) for chunk in iter_encoded_records(prepared))
    hook.close()
    return {
        "seconds": seconds,
        "peak_extra_bytes": memory.extra_bytes,
        "memory_method": memory.method,
        "body_bytes": body_bytes,
        "batch_id": batch_id,
    }


def naive_client(url: str, data: str) -> dict[str, Any]:
    import requests

    frame = load_frame(data)
    login = requests.post(
        f"{url}/login", json={"username": "admin", "password": SINK_PASSWORD}, timeout=60
    )
    headers = {
        "Authorization": f"Bearer {login.json()['access_token']}",
        "Content-Type": "application/json",
    }
    with PeakMemory() as memory:
        started = time.perf_counter()
        body = json.dumps(frame.to_dict("records")).encode()
        response = requests.post(
            f"{url}/api/{SERVICE}/{VERSION}/batch?parallelCount=10",
            data=body,
            headers=headers,
            timeout=600,
        )
        seconds = time.perf_counter() - started
    response.raise_for_status()
    return {
        "seconds": seconds,
        "peak_extra_bytes": memory.extra_bytes,
        "memory_method": memory.method,
        "body_bytes": len(body),
    }


# -- the parent ---------------------------------------------------------------------------------


def server_ingest(workdir: Path, data: str) -> tuple[int, float, int]:
    """Time the reference server takes to accept the provider's body (until its 202)."""
    import requests

    from airflow_provider.records import encode_records, prepare_records

    frame = load_frame(data)
    from airflow_provider.api import ParameterDefinition

    inputs = [ParameterDefinition(name, "numeric") for name in frame.columns]
    body = encode_records(prepare_records(frame, inputs))
    del frame
    with reference_server(workdir, "--max-body-bytes", str(2 * len(body) + 2**20)) as server:
        headers = {**server.headers(), "Content-Type": "application/json"}
        started = time.perf_counter()
        response = requests.post(
            f"{server.url}/api/{SERVICE}/{VERSION}/batch",
            data=body,
            headers=headers,
            params={"parallelCount": "1"},
            timeout=1800,
        )
        seconds = time.perf_counter() - started
        response.raise_for_status()
        batch_id = response.json()["BatchExecutionId"]
        requests.delete(
            f"{server.url}/api/{SERVICE}/{VERSION}/batch/{batch_id}", headers=headers, timeout=600
        ).raise_for_status()
    return len(body), seconds, response.status_code


def run_client(name: str, url: str, data: str) -> dict[str, Any]:
    """One measured run of one client, in its own process."""
    if name == "ms_client":
        return run_child(
            [
                str(COMPAT_PYTHON),
                *("-m", "benchmarks.ms_client", "submit", "--url", url),
                *("--service", SERVICE, "--version", VERSION, "--data", data),
            ],
            BENCH_PASSWORD=SINK_PASSWORD,
        )
    return run_child(
        [
            python(),
            *("-m", "benchmarks.bench_submit", "--client", name),
            *("--url", url, "--data", data),
        ]
    )


def main() -> None:
    args = parse_args(
        __doc__.split("\n", 1)[0],
        [
            ("--client", {"choices": ("provider", "naive"), "help": "(internal) one client"}),
            ("--url", {"help": "(internal) sink URL"}),
            ("--data", {"help": "(internal) .npz of the columns"}),
        ],
    )
    if args.client:
        client = provider_client if args.client == "provider" else naive_client
        print(json.dumps(client(args.url, args.data)), flush=True)
        return
    rows = 100_000 if args.quick else 1_000_000
    workdir = Path(tempfile.mkdtemp(prefix="mrsdeploy-bench-submit-"))
    data = str(workdir / "columns.npz")
    np.savez(data, **make_columns(rows))  # type: ignore[arg-type]
    say(f"submit: {rows:,} rows x 11 numeric columns, each client in its own process")
    runs: dict[str, list[dict[str, Any]]] = {"provider": [], "naive": []}
    if COMPAT_PYTHON.exists():
        runs["ms_client"] = []
    with process_with_url([python(), "-m", "benchmarks.sink", "--port", "0"]) as url:
        # Interleaved repetitions, best kept: a burst of load from elsewhere on the machine
        # then hits every client alike instead of deciding a ratio.
        for _ in range(REPEATS):
            for name in runs:
                runs[name].append(run_client(name, url, data))
    reports = {name: min(found, key=lambda r: r["seconds"]) for name, found in runs.items()}
    for name, found in runs.items():
        times = ", ".join(f"{r['seconds']:.2f}" for r in found)
        say(f"  {name} runs: {times} s (best kept)")
    body = reports["provider"]["body_bytes"]
    for name, report in reports.items():
        size = f", body {mib(report['body_bytes'])}" if "body_bytes" in report else ""
        say(
            f"  {name:<10} {report['seconds']:8.2f} s  {rows / report['seconds']:>12,.0f} rows/s"
            f"  peak memory +{mib(report['peak_extra_bytes'])}{size}"
        )
    say(f"  memory measured as: {reports['provider']['memory_method']}")
    peak_ratio = reports["provider"]["peak_extra_bytes"] / body
    say(f"  provider peak memory / request body: {peak_ratio:.2f}")
    ratio("submit_memory_vs_body", peak_ratio)
    ratio("submit_speedup_vs_naive", reports["naive"]["seconds"] / reports["provider"]["seconds"])
    if "ms_client" in reports:
        ratio(
            "submit_speedup_vs_ms_client",
            reports["ms_client"]["seconds"] / reports["provider"]["seconds"],
        )
    ingested, seconds, answer = server_ingest(workdir, data)
    say(
        f"  reference server ingest of the provider body ({mib(ingested)}): {seconds:.2f} s "
        f"({rows / seconds:,.0f} rows/s) until {answer}"
    )
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
