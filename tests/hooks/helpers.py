"""Small helpers of the hook tests."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import requests

from airflow_provider.api import BatchStatus
from airflow_provider.hooks import MrsDeployHook
from tests.support.server import ReferenceServer

HookFactory = Callable[..., MrsDeployHook]

MT = ("mtService", "v1.0.0")
ECHO = ("echoService", "v1.0.0")
#: hp=120, wt=2.8 scores 0.6418125 in the upstream documentation.
DOC_ANSWER = 0.6418125


def mtcars_records() -> list[dict[str, float]]:
    """The 32 rows of the packaged mtcars table as ``{"hp", "wt"}`` records."""
    text = (resources.files("airflow_provider.server") / "data" / "mtcars.csv").read_text()
    return [{"hp": float(r["hp"]), "wt": float(r["wt"])} for r in csv.DictReader(io.StringIO(text))]


def encode(records: list[dict[str, Any]]) -> bytes:
    """A batch body: the JSON array of records."""
    return json.dumps(records).encode()


def wait_terminal(
    hook: MrsDeployHook, service: tuple[str, str], batch_id: str, limit: float = 60.0
) -> BatchStatus:
    """Poll until the batch is terminal (bounded, so a stuck batch fails the test)."""
    deadline = time.monotonic() + limit
    while True:
        status = hook.get_batch_status(*service, batch_id)
        if status.is_terminal:
            return status
        assert time.monotonic() < deadline, f"batch {batch_id} stuck in {status.to_summary()}"
        time.sleep(0.05)


def http_faults_left(server: ReferenceServer) -> list[int]:
    """How many injected HTTP errors each configured fault still has to serve."""
    response = requests.get(f"{server.url}/_faults", headers=server.headers(), timeout=30)
    response.raise_for_status()
    return [int(fault["count"]) for fault in response.json()["httpErrors"]]
