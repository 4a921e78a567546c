"""A task's channel to its supervisor (``SUPERVISOR_COMMS``), answered as the supervisor
answers: through Airflow's own execution API client, against a stand-in API holding XComs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


class ExecutionApi:
    """A task's channel to its supervisor, answered through Airflow's own execution API client
    against a stand-in API holding ``stored`` XComs (a missing one is a 404, as the real API
    answers)."""

    def __init__(self, stored: dict[tuple[str, int], Any] | None = None) -> None:
        from airflow.sdk.api.client import Client

        self.stored: dict[tuple[str, int], Any] = {} if stored is None else stored
        self.client = Client(
            base_url=None, dry_run=True, token="", transport=httpx.MockTransport(self._api)
        )

    def _api(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")  # xcoms/dag/run/task/key[/slice]
        key = parts[4]
        if parts[-1] == "slice":
            values = [v for (k, _), v in sorted(self.stored.items()) if k == key]
            return httpx.Response(200, json=values)
        map_index = int(request.url.params.get("map_index", -1))
        if (key, map_index) in self.stored:
            return httpx.Response(200, json={"key": key, "value": self.stored[key, map_index]})
        return httpx.Response(404, json={"detail": {"reason": "not_found"}})

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import (
            GetXCom,
            GetXComSequenceSlice,
            XComResult,
            XComSequenceSliceResult,
        )

        xcoms = self.client.xcoms
        if isinstance(msg, GetXCom):
            found = xcoms.get(msg.dag_id, msg.run_id, msg.task_id, msg.key, msg.map_index)
            return XComResult.from_xcom_response(found)
        if isinstance(msg, GetXComSequenceSlice):
            found = xcoms.get_sequence_slice(
                msg.dag_id, msg.run_id, msg.task_id, msg.key, None, None, None
            )
            return XComSequenceSliceResult.from_response(found)
        raise AssertionError(f"unexpected request {msg!r}")


def install(monkeypatch: pytest.MonkeyPatch) -> ExecutionApi:
    """An :class:`ExecutionApi` as the task runner's channel, for one test."""
    from airflow.sdk.execution_time import task_runner

    channel = ExecutionApi()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", channel, raising=False)
    return channel
