"""Microsoft's client (``azureml-model-management-sdk``) driven the way its users write it.

Runs in ``.venv-compat`` (its own virtualenv): ``.venv-compat/bin/python -m
benchmarks.ms_client submit|collect ...``. Prints one JSON report as its last line.

- ``submit``: ``service.batch(frame).start()``, the client's documented way to send a DataFrame.
- ``collect``: the per-row loop, ``list_artifacts(i)`` then ``artifact(i, name)`` for every
  file, one call at a time, each file written to disk.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.memory import PeakMemory


def _client(url: str, password: str) -> Any:
    from azureml.deploy import DeployClient
    from azureml.deploy.server import MLServer

    from tests.compat.ms_client_driver import install_function_beget

    install_function_beget()
    return DeployClient(url, use=MLServer, auth=("admin", password))


def submit(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    with np.load(args.data) as data:
        frame = pd.DataFrame({name: data[name] for name in data.files})
    client = _client(args.url, args.password)
    service = client.get_service(args.service, version=args.version)
    with PeakMemory() as memory:
        started = time.perf_counter()
        batch = service.batch(frame, parallel_count=10).start()
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_extra_bytes": memory.extra_bytes,
        "memory_method": memory.method,
        "batch_id": batch.execution_id,
    }


def collect(args: argparse.Namespace) -> dict[str, Any]:
    client = _client(args.url, args.password)
    service = client.get_service(args.service, version=args.version)
    batch = service.get_batch(args.batch_id)
    destination = Path(args.destination)
    files = size = 0
    started = time.perf_counter()
    for index in range(args.rows):
        for name in batch.list_artifacts(index):
            content = batch.artifact(index, name)
            folder = destination / str(index)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(content)
            files += 1
            size += len(content)
    return {"seconds": time.perf_counter() - started, "files": files, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("mode", choices=("submit", "collect"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--data", help="submit: .npz file of the columns")
    parser.add_argument("--batch-id", help="collect: the batch")
    parser.add_argument("--rows", type=int, default=0, help="collect: rows to fetch")
    parser.add_argument("--destination", help="collect: folder for the files")
    args = parser.parse_args()
    args.password = os.environ.get("BENCH_PASSWORD", "")
    report = submit(args) if args.mode == "submit" else collect(args)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
