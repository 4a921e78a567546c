"""Services the benchmarks register on the reference server (``--services-config``).

The server imports them by path (``benchmarks.services:...``), so its process needs the
repository root on ``PYTHONPATH``; :func:`write_config` writes the configuration file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from airflow_provider.server.invocation import ServiceContext

#: Inputs of the wide scoring service: eleven numeric columns, as in the submit benchmark.
WIDE_INPUTS = [f"x{i}" for i in range(11)]
#: Size of the file each row of ``fileService`` writes.
FILE_BYTES = 10 * 1024
#: Weights of the wide scoring service, one per input, in the order of ``WIDE_INPUTS``.
WIDE_WEIGHTS = [0.5, -1.25, 2.0, 0.125, -0.75, 1.5, -2.5, 0.0625, 3.0, -0.375, 0.01]
_MODULE = "benchmarks.services"


def wide_score(ctx: ServiceContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """A linear score of eleven numeric inputs; no files, no console output."""
    return {
        "score": sum(
            w * float(inputs[name]) for w, name in zip(WIDE_WEIGHTS, WIDE_INPUTS, strict=True)
        )
    }


def file_row(ctx: ServiceContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """Writes one ~10 KB text file per row (``report.txt``), content depending on the row."""
    row = int(inputs["i"])
    line = f"row {row:>10} " + "0123456789abcdef" * 4 + "\n"
    repeats = FILE_BYTES // len(line) + 1
    ctx.write_text("report.txt", (line * repeats)[:FILE_BYTES])
    return {"value": row * 2}


def tiny(ctx: ServiceContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """The least a service can do: its integer input back (large batches, built cheaply)."""
    return {"y": int(inputs["i"])}


def sleeper(ctx: ServiceContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """Sleeps ``seconds`` (keeps a batch running while waiting is measured)."""
    time.sleep(float(inputs["seconds"]))
    return {"slept": float(inputs["seconds"])}


SERVICES: list[dict[str, Any]] = [
    {
        "name": "wideService",
        "version": "v1",
        "callable": f"{_MODULE}:wide_score",
        "inputParameterDefinitions": [{"name": n, "type": "numeric"} for n in WIDE_INPUTS],
        "outputParameterDefinitions": [{"name": "score", "type": "numeric"}],
    },
    {
        "name": "fileService",
        "version": "v1",
        "callable": f"{_MODULE}:file_row",
        "inputParameterDefinitions": [{"name": "i", "type": "integer"}],
        "outputParameterDefinitions": [{"name": "value", "type": "integer"}],
        "outputFileNames": ["report.txt"],
    },
    {
        "name": "tinyService",
        "version": "v1",
        "callable": f"{_MODULE}:tiny",
        "inputParameterDefinitions": [{"name": "i", "type": "integer"}],
        "outputParameterDefinitions": [{"name": "y", "type": "integer"}],
    },
    {
        "name": "sleepService",
        "version": "v1",
        "callable": f"{_MODULE}:sleeper",
        "inputParameterDefinitions": [{"name": "seconds", "type": "numeric"}],
        "outputParameterDefinitions": [{"name": "slept", "type": "numeric"}],
    },
]


def write_config(path: Path) -> Path:
    """Write the services configuration file and return its path."""
    path.write_text(json.dumps({"services": SERVICES}, indent=2), encoding="utf-8")
    return path
