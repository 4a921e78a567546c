"""Resuming a download against servers that ignore ``Range`` or change the file meanwhile."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from airflow_provider.api import MrsDeployProtocolError
from airflow_provider.hooks import MrsDeployHook
from tests.faults.conftest import ConnSetter
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


def download(hook: MrsDeployHook) -> bytes:
    return b"".join(hook.iter_batch_file("svc", "v1", "batch", 0, "data.bin"))


def test_resume_with_range(misbehaving: MisbehavingServer, hook: MrsDeployHook) -> None:
    misbehaving.script.cut_after, misbehaving.script.cuts = 100_000, 2
    assert download(hook) == CONTENT
    ranges = [requested for _, requested in misbehaving.script.requests]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert len(ranges) == 3


def test_resume_when_the_server_ignores_range(
    misbehaving: MisbehavingServer, hook: MrsDeployHook
) -> None:
    """The full file comes again: the part already delivered is skipped, not repeated."""
    misbehaving.script.honour_range = False
    misbehaving.script.cut_after, misbehaving.script.cuts = 123_457, 1
    assert download(hook) == CONTENT
    assert len(misbehaving.script.requests) == 2


def test_file_changed_between_attempts_fails_instead_of_splicing(
    misbehaving: MisbehavingServer, hook: MrsDeployHook
) -> None:
    misbehaving.script.cut_after, misbehaving.script.cuts = 100_000, 1
    misbehaving.script.change_after, misbehaving.script.changed = 2, os.urandom(300_000)
    with pytest.raises(MrsDeployProtocolError, match="changed on the server"):
        download(hook)


def test_abandoned_iterator_closes_its_response(
    misbehaving: MisbehavingServer, hook: MrsDeployHook
) -> None:
    chunks = hook.iter_batch_file("svc", "v1", "batch", 0, "data.bin", chunk_size=1000)
    assert len(next(chunks)) == 1000
    chunks.close()  # the consumer stops early (e.g. a storage error): nothing is left open
    assert download(hook) == CONTENT
