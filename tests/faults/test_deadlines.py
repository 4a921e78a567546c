"""Every request has a total deadline, and a wait ends at its deadline whatever the server does.

A hostile stand-in server accepts requests and never answers, or answers one byte at a time;
each case runs on the blocking path (``requests``) and the async path (``aiohttp``). The bounds
asserted are generous ("did not hang"): every misbehaviour here would otherwise hold the call
for minutes or forever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.api import MrsDeployConnectionError
from airflow_provider.compat import AirflowSensorTimeout
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.sensors import MrsDeployBatchSensor
from tests.faults.conftest import ConnSetter
from tests.faults.helpers import MT, batch_trigger, run_trigger
from tests.faults.hostile import FILE_CONTENT, HostileServer, Misbehaviour
from tests.support.certificates import self_signed

#: Far below what any misbehaviour here would take without a deadline (a minute or more).
DID_NOT_HANG = 15.0


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


def timed(
    path: str,
    sync_call: Callable[[], Any],
    async_call: Callable[[], Coroutine[Any, Any, Any]],
) -> tuple[Any, float]:
    """Run the sync or the async form of a call; return (result or raised error, seconds)."""
    started = time.monotonic()
    try:
        result = sync_call() if path == "sync" else asyncio.run(async_call())
    except Exception as err:  # the error is the result under test
        result = err
    return result, time.monotonic() - started


def status_calls(hook: MrsDeployHook) -> tuple[Callable[[], Any], Callable[[], Any]]:
    async def in_loop() -> Any:
        try:
            return await hook.aget_batch_progress(*MT, "b1")
        finally:
            await hook.aclose()

    return (lambda: hook.get_batch_progress(*MT, "b1")), in_loop


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize(
    "misbehaviour",
    [
        Misbehaviour(hang=True),
        Misbehaviour(drip_headers=True),
        Misbehaviour(drip_body=True),
    ],
    ids=["black-hole", "dripped-headers", "dripped-body"],
)
def test_an_answer_that_never_completes_times_out(
    hostile: HostileServer, set_default_conn: ConnSetter, path: str, misbehaviour: Misbehaviour
) -> None:
    hostile.script.routes["status"] = misbehaviour
    hostile.script.drip_interval = 0.3  # each byte well within the timeout, the whole far past
    set_default_conn(hostile.port, "the-password", timeout=1, max_retries=0)
    error, seconds = timed(path, *status_calls(MrsDeployHook()))
    assert isinstance(error, MrsDeployConnectionError), error
    assert "no complete answer" in str(error) and "within 1 s" in str(error)
    assert error.retryable
    assert seconds < DID_NOT_HANG


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("misbehaviour", [Misbehaviour(hang=True), Misbehaviour(drip_body=True)])
def test_an_https_answer_that_never_completes_times_out(
    tmp_path: Path, set_default_conn: ConnSetter, path: str, misbehaviour: Misbehaviour
) -> None:
    """The same over TLS: the socket under the TLS layer is shut, the read ends cleanly."""
    cert, key = self_signed(tmp_path)
    with HostileServer(tls=(cert, key)) as server:
        server.script.routes["status"] = misbehaviour
        server.script.drip_interval = 0.3
        set_default_conn(
            server.port,
            "the-password",
            scheme="https",
            ca_bundle=str(cert),
            timeout=1,
            max_retries=1,
        )
        error, seconds = timed(path, *status_calls(MrsDeployHook()))
        assert isinstance(error, MrsDeployConnectionError), error
        assert "no complete answer" in str(error)
        assert server.script.count("status") == 2  # retried once, as a timeout should be
    assert seconds < DID_NOT_HANG


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_timed_out_request_is_retried_and_then_succeeds(
    hostile: HostileServer, set_default_conn: ConnSetter, path: str
) -> None:
    hostile.script.routes["status"] = Misbehaviour(drip_headers=True, times=1)
    hostile.script.progress = [(2, 3)]
    set_default_conn(hostile.port, "the-password", timeout=1, max_retries=2)
    status, seconds = timed(path, *status_calls(MrsDeployHook()))
    assert not isinstance(status, Exception), status
    assert (status.completed_item_count, status.total_item_count) == (2, 3)
    assert hostile.script.count("status") == 2
    assert seconds < DID_NOT_HANG


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_stalled_download_resumes(
    hostile: HostileServer,
    set_default_conn: ConnSetter,
    all_logs: Callable[[], str],
    path: str,
) -> None:
    """A file dripping a byte at a time stalls (a whole chunk must arrive within the timeout);
    the download starts again and delivers the file exactly once."""
    hostile.script.routes["file"] = Misbehaviour(drip_body=True, times=1)
    hostile.script.drip_interval = 0.05
    set_default_conn(hostile.port, "the-password", timeout=1, max_retries=2)
    hook = MrsDeployHook()

    async def in_loop() -> bytes:
        try:
            chunks = [c async for c in hook.aiter_batch_file(*MT, "b1", 0, "a.txt")]
            return b"".join(chunks)
        finally:
            await hook.aclose()

    content, seconds = timed(path, lambda: hook.get_batch_file(*MT, "b1", 0, "a.txt"), in_loop)
    assert content == FILE_CONTENT
    assert hostile.script.count("file") == 2
    assert "download stalled" in all_logs()
    assert seconds < DID_NOT_HANG


@pytest.mark.parametrize(
    "misbehaviour",
    [Misbehaviour(hang=True), Misbehaviour(status=503, retry_after="300")],
    ids=["poll-hangs", "retry-after-past-deadline"],
)
def test_the_trigger_ends_at_its_deadline(
    hostile: HostileServer, set_default_conn: ConnSetter, misbehaviour: Misbehaviour
) -> None:
    """The connection's own timeout (60 s) and the server's ``Retry-After`` (300 s) are both
    far past the wait's deadline: the deadline wins."""
    hostile.script.routes["status"] = misbehaviour
    set_default_conn(hostile.port, "the-password", timeout=60)
    trigger = batch_trigger(["b1"], deadline=time.time() + 2)
    started = time.monotonic()
    payload = run_trigger(trigger, timeout=60)
    assert payload["status"] == "timeout", payload
    assert time.monotonic() - started < DID_NOT_HANG


def test_a_poking_sensor_never_waits_past_its_timeout(
    hostile: HostileServer, set_default_conn: ConnSetter, task_context: Any
) -> None:
    """``Retry-After: 300`` on every status check: no poke waits for it past the sensor's
    timeout; the sensor fails with ``AirflowSensorTimeout`` and cancels the batch."""
    hostile.script.routes["status"] = Misbehaviour(status=503, retry_after="300")
    set_default_conn(hostile.port, "the-password")
    wait = MrsDeployBatchSensor(
        task_id="wait",
        batch_id="b1",
        service_name=MT[0],
        service_version=MT[1],
        poke_interval=0.2,
        timeout=2,
        mode="poke",
        deferrable=False,
    )
    started = time.monotonic()
    with pytest.raises(AirflowSensorTimeout):
        wait.execute(task_context)
    assert time.monotonic() - started < DID_NOT_HANG
    assert hostile.script.count("cancel") == 1


def test_an_upload_longer_than_the_timeout_is_given_the_timeout_from_its_end(
    hostile: HostileServer, set_default_conn: ConnSetter
) -> None:
    """A batch start's body read for 2 s over a slow link, with a 1 s timeout: the answer
    is due 1 s after the upload ends. The whole request's deadline cut the upload at 1 s, and
    so did the socket's, which bounds a whole ``sendall`` of a body given as bytes."""
    hostile.script.routes["start"] = Misbehaviour(slow_read=2.0)
    hostile.script.drip_interval = 0.02
    set_default_conn(hostile.port, "the-password", timeout=1, max_retries=0)
    body = b"[" + b",".join([b'{"x": 1}'] * 2_000_000) + b"]"  # 18 MB: beyond socket buffers
    started = time.monotonic()
    assert MrsDeployHook().start_batch(*MT, body) == "b1"
    assert 2.0 <= time.monotonic() - started < DID_NOT_HANG
    (start,) = [
        seen for seen in hostile.script.seen if seen.method == "POST" and "/batch" in seen.path
    ]
    assert start.body == body


def test_a_server_that_stops_reading_an_upload_still_times_out(
    hostile: HostileServer, set_default_conn: ConnSetter
) -> None:
    """Counting from the end of the upload, a server that never reads the body is still
    bounded: each block of the body must be taken within the timeout."""
    hostile.script.routes["start"] = Misbehaviour(slow_read=60.0)
    hostile.script.drip_interval = 30.0  # one block, then nothing for far longer than 1 s
    set_default_conn(hostile.port, "the-password", timeout=1, max_retries=0)
    body = b"[" + b",".join([b'{"x": 1}'] * 2_000_000) + b"]"
    started = time.monotonic()
    with pytest.raises(MrsDeployConnectionError):
        MrsDeployHook().start_batch(*MT, body)
    assert time.monotonic() - started < DID_NOT_HANG
