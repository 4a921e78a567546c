"""Resuming a download against servers that ignore ``Range`` or change the file meanwhile.

Each case runs on the blocking path (``iter_batch_file``) and on the event loop
(``aiter_batch_file``, what the collect operator uses): both resume by the same rules.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator

import pytest

from airflow_provider.api import MrsDeployProtocolError
from airflow_provider.hooks import MrsDeployHook
from tests.faults.conftest import ConnSetter
from tests.faults.helpers import adownload_whole
from tests.faults.misbehaving import MisbehavingServer

CONTENT = os.urandom(300_000)


@pytest.fixture
def misbehaving() -> Iterator[MisbehavingServer]:
    with MisbehavingServer() as server:
        server.script.content = CONTENT
        yield server


@pytest.fixture
def hook(misbehaving: MisbehavingServer, set_default_conn: ConnSetter) -> Iterator[MrsDeployHook]:
    set_default_conn(misbehaving.port, "pw")
    made = MrsDeployHook()
    yield made
    made.close()


@pytest.fixture(params=["blocking", "event-loop"])
def download(request: pytest.FixtureRequest) -> Callable[[MrsDeployHook], bytes]:
    """Download the file whole, through one of the hook's two paths."""
    if request.param == "blocking":
        return lambda hook: b"".join(hook.iter_batch_file("svc", "v1", "batch", 0, "data.bin"))

    on_the_loop = adownload_whole

    return lambda hook: asyncio.run(on_the_loop(hook))


Download = Callable[[MrsDeployHook], bytes]


def test_resume_with_range(
    misbehaving: MisbehavingServer, hook: MrsDeployHook, download: Download
) -> None:
    misbehaving.script.cut_after, misbehaving.script.cuts = 100_000, 2
    assert download(hook) == CONTENT
    ranges = [requested for _, requested in misbehaving.script.requests]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert len(ranges) == 3


def test_resume_when_the_server_ignores_range(
    misbehaving: MisbehavingServer, hook: MrsDeployHook, download: Download
) -> None:
    """The full file comes again: the part already delivered is skipped, not repeated."""
    misbehaving.script.honour_range = False
    misbehaving.script.cut_after, misbehaving.script.cuts = 123_457, 1
    assert download(hook) == CONTENT
    assert len(misbehaving.script.requests) == 2


def test_file_changed_between_attempts_fails_instead_of_splicing(
    misbehaving: MisbehavingServer, hook: MrsDeployHook, download: Download
) -> None:
    misbehaving.script.cut_after, misbehaving.script.cuts = 100_000, 1
    misbehaving.script.change_after, misbehaving.script.changed = 2, os.urandom(300_000)
    with pytest.raises(MrsDeployProtocolError, match="changed on the server"):
        download(hook)


def test_abandoned_iterator_closes_its_response(
    misbehaving: MisbehavingServer, hook: MrsDeployHook, download: Download
) -> None:
    chunks = hook.iter_batch_file("svc", "v1", "batch", 0, "data.bin", chunk_size=1000)
    assert len(next(chunks)) == 1000
    chunks.close()  # the consumer stops early (e.g. a storage error): nothing is left open
    assert download(hook) == CONTENT


def test_abandoned_async_iterator_closes_its_response(
    misbehaving: MisbehavingServer, hook: MrsDeployHook
) -> None:
    async def first_chunk_then_whole_file() -> tuple[bytes, bytes]:
        try:
            chunks = hook.aiter_batch_file("svc", "v1", "batch", 0, "data.bin", chunk_size=1000)
            first = await anext(chunks)
            await chunks.aclose()  # the consumer stops early: the response must not linger
            again = hook.aiter_batch_file("svc", "v1", "batch", 0, "data.bin")
            return first, b"".join([chunk async for chunk in again])
        finally:
            await hook.aclose()

    first, whole = asyncio.run(first_chunk_then_whole_file())
    assert first and CONTENT.startswith(first)
    assert whole == CONTENT
