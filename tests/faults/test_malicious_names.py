"""Hostile file names listed by a server: nothing may land outside the destination.

Two servers are used. The reference server *lists* hostile names through its
``extraFileNames`` fault hook but, rightly, refuses to serve them (404, or 400 for a NUL): that
is a listed file the client cannot fetch, and collect must fail loudly, naming the file, without
publishing a manifest. The in-test misbehaving server lists *and serves* them, which checks the
other half: the writer turns each name into a safe name directly under ``files/<index>/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider.api import MrsDeployApiError
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.outputs import MAX_FILE_NAME_BYTES, OutputWriter, plan_row_files
from tests.faults.conftest import ConnSetter
from tests.faults.helpers import CARS, MT, collect, files_outside
from tests.faults.misbehaving import MisbehavingServer
from tests.hooks.helpers import wait_terminal
from tests.support.server import ReferenceServer

LONG = "n" * 300 + ".txt"
HOSTILE = ["../../evil.txt", "/etc/passwd", "a\u0000b", LONG, "..\\..\\win.txt"]


def finished_batch() -> str:
    hook = MrsDeployHook()
    try:
        batch_id = hook.start_batch(*MT, json.dumps(CARS[:2]).encode())
        wait_terminal(hook, MT, batch_id)
        return batch_id
    finally:
        hook.close()


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("../../evil.txt", 404),
        ("/etc/passwd", 404),
        ("a\u0000b", 400),
        (LONG, 404),
    ],
    ids=["parent", "absolute", "nul", "long"],
)
def test_listed_but_unservable_name_fails_collect_loudly(
    name: str,
    status: int,
    fast_conn: str,
    reference_server: ReferenceServer,
    task_context: Any,
    tmp_path: Path,
) -> None:
    batch_id = finished_batch()
    destination = tmp_path / "out"
    with (
        reference_server.faults(extraFileNames=[name], service=MT[0]),
        pytest.raises(MrsDeployApiError) as info,
    ):
        collect(task_context, batch_id, destination, file_listing="always")
    error = info.value
    assert error.status_code == status
    assert error.path is not None and "/files/" in error.path
    assert "/" not in error.path.rsplit("/files/", 1)[1]  # the name stayed one quoted segment
    assert not (destination / "manifest.json").exists()
    assert files_outside(tmp_path, destination) == []


@pytest.fixture
def hostile_server(set_default_conn: ConnSetter) -> Iterator[MisbehavingServer]:
    with MisbehavingServer() as server:
        server.script.file_names = HOSTILE
        set_default_conn(server.port, "pw")
        yield server


def land_files(destination: Path, names_from: MrsDeployHook) -> list[Any]:
    """What collect does for one row: list the names, stream each file into the writer."""
    writer = OutputWriter(ObjectStoragePath(str(destination)))
    planned = plan_row_files(0, names_from.list_batch_files(*MT, "batch", 0))
    writer.begin(f.path for f in planned)
    return [
        writer.write_file(f, names_from.iter_batch_file(*MT, "batch", 0, f.name)) for f in planned
    ]


def test_served_hostile_names_land_inside_the_destination(
    hostile_server: MisbehavingServer, tmp_path: Path
) -> None:
    destination = tmp_path / "deep" / "out"
    hook = MrsDeployHook()
    written = land_files(destination, hook)
    hook.close()
    assert files_outside(tmp_path, destination) == []
    row_dir = destination / "files" / "0"
    for entry, name in zip(written, HOSTILE, strict=True):
        landed = row_dir / entry.name
        assert landed.parent == row_dir and landed.is_file()
        assert landed.read_bytes() == f"content for {name}".encode()
        assert "\x00" not in entry.name and "/" not in entry.name and "\\" not in entry.name
        assert len(entry.name.encode()) <= MAX_FILE_NAME_BYTES
    assert sorted(e.name for e in written)[:2] == ["a_b", "evil.txt"]


def test_two_names_that_sanitize_alike_do_not_overwrite_each_other(
    hostile_server: MisbehavingServer, tmp_path: Path
) -> None:
    """``answer.csv`` and ``../answer.csv`` are different files on the server."""
    hostile_server.script.file_names = ["answer.csv", "../answer.csv"]
    destination = tmp_path / "out"
    hook = MrsDeployHook()
    written = land_files(destination, hook)
    hook.close()
    assert files_outside(tmp_path, destination) == []
    paths = [destination / entry.path for entry in written]
    assert len(set(paths)) == 2, [str(p) for p in paths]
    contents = {p.read_bytes() for p in paths}
    assert contents == {b"content for answer.csv", b"content for ../answer.csv"}


def test_crafted_names_land_as_distinct_files_with_their_own_checksums(
    hostile_server: MisbehavingServer, tmp_path: Path
) -> None:
    """``x.txt``, ``x-<hash>.txt`` (the form ``../x.txt`` would take) and ``../x.txt``."""
    import hashlib

    digest = hashlib.sha256(b"../x.txt").hexdigest()[:8]
    hostile_server.script.file_names = ["x.txt", f"x-{digest}.txt", "../x.txt", "X.TXT"]
    destination = tmp_path / "out"
    hook = MrsDeployHook()
    written = land_files(destination, hook)
    hook.close()
    assert len({entry.path for entry in written}) == 4
    for entry, name in zip(written, hostile_server.script.file_names, strict=True):
        content = (destination / entry.path).read_bytes()
        assert content == f"content for {name}".encode()
        assert hashlib.sha256(content).hexdigest() == entry.sha256 and entry.size == len(content)
    assert files_outside(tmp_path, destination) == []
