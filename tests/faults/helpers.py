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

from airflow_provider.batch_set import BatchSet, is_batch_set_json
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


def submit(
    context: Any, records: Any, service: tuple[str, str] = MT, **kwargs: Any
) -> dict[str, Any]:
    """Run the submit operator's ``execute``; return its batch set (the JSON of its
    ``return_value``), which later tasks take as ``batch_id`` as they would ``submit.output``.

    Its XCom is made visible to later tasks too.
    """
    op = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name=service[0],
        service_version=service[1],
        records=records,
        deferrable=False,
        **kwargs,
    )
    try:
        returned = op.execute(context)
    finally:
        op.hook.close()
    batch_set = BatchSet.from_json(returned)
    assert (batch_set.service_name, batch_set.service_version) == service, returned
    if isinstance(records, list):  # every submitted row is in exactly one batch
        assert batch_set.row_count == len(records), returned
    ti = context["ti"]
    assert ti.pushed["batch_set"] == returned  # pushed before any wait, same value
    ti.store[("submit", "return_value")] = returned
    for key, value in ti.pushed.items():
        ti.store[("submit", key)] = value
    return dict(returned)


def only_id(batch_set: Any) -> str:
    """The one batch of a batch set (JSON or :class:`BatchSet`) that holds a single batch."""
    parsed = batch_set if isinstance(batch_set, BatchSet) else BatchSet.from_json(batch_set)
    assert len(parsed.batch_ids) == 1, parsed  # one batch per submit in these tests
    return parsed.batch_ids[0]


def _service_kwargs(batch_id: Any, service: tuple[str, str] | None) -> dict[str, Any]:
    """``service_name``/``service_version`` for a task given ``batch_id``: as asked, or the
    default service for plain ids (a batch set names its own service, so none is passed)."""
    if service is None and not (isinstance(batch_id, BatchSet) or is_batch_set_json(batch_id)):
        service = MT
    return {} if service is None else {"service_name": service[0], "service_version": service[1]}


def sensor(
    batch_id: Any, service: tuple[str, str] | None = None, **kwargs: Any
) -> MrsDeployBatchSensor:
    """A poke-mode sensor polling quickly, bounded by a generous timeout.

    :param batch_id: a batch set (as :func:`submit` returns), or plain ids of ``service``.
    :param service: the service of plain ids (default ``MT``); with a batch set, given only
        to check it against the set's.
    """
    kwargs.setdefault("poke_interval", 0.2)
    kwargs.setdefault("timeout", 120)
    return MrsDeployBatchSensor(
        task_id="wait",
        batch_id=batch_id,
        deferrable=False,
        mode="poke",
        **_service_kwargs(batch_id, service),
        **kwargs,
    )


def collect(
    context: Any,
    batch_id: Any,
    destination: Path,
    service: tuple[str, str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run the collect operator's ``execute`` into ``destination``.

    :param batch_id: a batch set (as :func:`submit` returns), or plain ids of ``service``.
    :param service: the service of plain ids (default ``MT``); with a batch set, given only
        to check it against the set's.
    """
    op = MrsDeployCollectBatchOperator(
        task_id="collect",
        batch_id=batch_id,
        destination=str(destination),
        **_service_kwargs(batch_id, service),
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
    batches: list[str] | dict[str, Any] | BatchSet, service: tuple[str, str] = MT, **kwargs: Any
) -> MrsDeployBatchTrigger:
    """A trigger polling quickly, given its batch set as the tasks give it (``batch_set=``).

    :param batches: a batch set (JSON or :class:`BatchSet`), or plain ids of ``service``.
    :param service: the service of plain ids.
    """
    kwargs.setdefault("poll_interval", 0.2)
    if isinstance(batches, list):
        batches = BatchSet.of_ids(service, batches)
    return MrsDeployBatchTrigger(batch_set=batches, **kwargs)


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


def poll_once(path: str, hook: Any, batch_id: str = "b1") -> Any:
    """One status poll of ``mtService`` on the blocking (``sync``) or the async path, with the
    hook closed afterwards; returns the status, or the error raised (the result under test)."""

    async def in_loop() -> Any:
        try:
            return await hook.aget_batch_progress(*MT, batch_id)
        finally:
            await hook.aclose()

    try:
        if path == "sync":
            return hook.get_batch_progress(*MT, batch_id)
        return asyncio.run(in_loop())
    except Exception as err:  # the error is the result under test
        return err
    finally:
        hook.close()


async def adownload_whole(hook: Any, name: str = "data.bin") -> bytes:
    """``name`` of row 0 of batch ``batch`` of ``svc`` ``v1``, whole, through the hook's
    event-loop path (its async session closed after)."""
    try:
        chunks = hook.aiter_batch_file("svc", "v1", "batch", 0, name)
        return b"".join([chunk async for chunk in chunks])
    finally:
        await hook.aclose()
