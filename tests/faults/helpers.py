"""Helpers of the fault tests: records, batches, the operators run by calling ``execute``."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, cast

import requests
from airflow.triggers.base import TriggerEvent

from airflow_provider.operators import (
    MrsDeployCollectBatchOperator,
    MrsDeploySubmitBatchOperator,
)
from airflow_provider.sensors import MrsDeployBatchSensor
from airflow_provider.triggers import MrsDeployBatchTrigger
from tests.support.server import ReferenceServer

MT = ("mtService", "v1.0.0")
ECHO = ("echoService", "v1.0.0")

CARS = [
    {"hp": 110.0, "wt": 2.62},
    {"hp": 93.0, "wt": 2.32},
    {"hp": 245.0, "wt": 3.84},
    {"hp": 66.0, "wt": 1.835},
]


def echo_rows(count: int, text_size: int = 10, repeat: int = 1) -> list[dict[str, Any]]:
    """``echoService`` records whose ``echo`` output names the row: ``row-<i>``-based texts.

    ``echo.txt`` of row ``i`` is the text repeated ``repeat`` times, so its size is controlled.
    """
    return [{"text": f"row-{i}-".ljust(text_size, "x"), "n": repeat} for i in range(count)]


def submit(context: Any, records: Any, service: tuple[str, str] = MT, **kwargs: Any) -> str:
    """Run the submit operator's ``execute``; its XCom is made visible to later tasks."""
    op = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name=service[0],
        service_version=service[1],
        records=records,
        deferrable=False,
        **kwargs,
    )
    try:
        batch_id = op.execute(context)
    finally:
        op.hook.close()
    assert isinstance(batch_id, str), batch_id  # one batch per submit in these tests
    ti = context["ti"]
    ti.store[("submit", "return_value")] = batch_id
    for key, value in ti.pushed.items():
        ti.store[("submit", key)] = value
    return batch_id


def sensor(batch_id: str, service: tuple[str, str] = MT, **kwargs: Any) -> MrsDeployBatchSensor:
    """A poke-mode sensor polling quickly, bounded by a generous timeout."""
    kwargs.setdefault("poke_interval", 0.2)
    kwargs.setdefault("timeout", 120)
    return MrsDeployBatchSensor(
        task_id="wait",
        batch_id=batch_id,
        service_name=service[0],
        service_version=service[1],
        deferrable=False,
        mode="poke",
        **kwargs,
    )


def collect(
    context: Any,
    batch_id: str,
    destination: Path,
    service: tuple[str, str] = MT,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run the collect operator's ``execute`` into ``destination``."""
    op = MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=batch_id,
        destination=str(destination),
        service_name=service[0],
        service_version=service[1],
        **kwargs,
    )
    try:
        return dict(op.execute(context))
    finally:
        op.hook.close()


def server_file(
    server: ReferenceServer, service: tuple[str, str], batch_id: str, index: int, name: str
) -> bytes:
    """A row file fetched straight from the server (no proxy, no hook), as the reference."""
    url = f"{server.url}/api/{service[0]}/{service[1]}/batch/{batch_id}/{index}/files/{name}"
    response = requests.get(url, headers=server.headers(), timeout=30)
    response.raise_for_status()
    return response.content


def check_manifest(destination: Path) -> dict[str, Any]:
    """Read the manifest and verify every listed file's size and SHA-256 on disk."""
    manifest: dict[str, Any] = json.loads((destination / "manifest.json").read_text())
    for entry in manifest["files"]:
        content = (destination / entry["path"]).read_bytes()
        assert len(content) == entry["size"], entry
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], entry
    return manifest


def files_outside(root: Path, destination: Path) -> list[Path]:
    """Every file under ``root`` that is not under ``destination``."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and destination not in path.parents and path != destination
    ]


def batch_trigger(
    batch_ids: list[str], service: tuple[str, str] = MT, **kwargs: Any
) -> MrsDeployBatchTrigger:
    """A trigger polling quickly."""
    kwargs.setdefault("poll_interval", 0.2)
    return MrsDeployBatchTrigger(
        batch_ids=batch_ids, service_name=service[0], service_version=service[1], **kwargs
    )


async def first_event(trigger: MrsDeployBatchTrigger, timeout: float = 90) -> TriggerEvent:
    """The trigger's first event (bounded), closing the generator afterwards."""
    generator = cast(AsyncGenerator[TriggerEvent, None], trigger.run())
    try:
        return await asyncio.wait_for(generator.__anext__(), timeout)
    finally:
        await generator.aclose()


def run_trigger(trigger: MrsDeployBatchTrigger, timeout: float = 90) -> dict[str, Any]:
    """Run a trigger in a fresh event loop until its first event; return the payload."""
    event = asyncio.run(first_event(trigger, timeout))
    return dict(event.payload)
