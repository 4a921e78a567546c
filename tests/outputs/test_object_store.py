"""Writing to an object store: each file goes straight to its final key, whole or not at all.

Against moto's S3 server on loopback, through ``ObjectStoragePath`` and s3fs over real HTTP;
the server counts every request it receives, so the tests see what crossed the wire: one
PUT per file (a multipart upload completed last for a large one), never a temporary object
copied into place and deleted, and nothing left under a final key by a stream, a request or
a process that fails half-way.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider.api import ExecutionResult
from airflow_provider.outputs import (
    JOURNAL_NAME,
    MANIFEST_NAME,
    MrsDeployDestinationError,
    OutputFormat,
    OutputsTable,
    OutputWriter,
    RenderedTable,
    WrittenFile,
    plan_row_files,
    storage,
)
from tests.outputs.helpers import manifest_of_run
from tests.outputs.s3_server import CountingS3Server, server_environment, serving_bucket

REPO = Path(__file__).resolve().parents[2]
BUCKET = "outputs-tests"
CONN = "moto_outputs"
#: The same server, with one attempt per request: an injected fault fails the call at once.
ONCE_CONN = "moto_outputs_once"
MIB = 1 << 20
DELETES = ("DeleteObject", "DeleteObjects")


@pytest.fixture(scope="module")
def server() -> Iterator[CountingS3Server]:
    with serving_bucket(BUCKET) as running:
        yield running


@pytest.fixture
def s3(server: CountingS3Server, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 client of the server, the connections set, the counts reset."""
    import boto3

    environment = {
        **server_environment(server.endpoint, CONN),
        **server_environment(server.endpoint, ONCE_CONN, attempts=1),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    server.reset()
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1")


@pytest.fixture
def prefix() -> str:
    return f"run-{uuid.uuid4().hex[:8]}"


def destination(prefix: str, conn: str = CONN) -> ObjectStoragePath:
    return ObjectStoragePath(f"s3://{conn}@{BUCKET}/{prefix}/")


def keys(client: Any, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix`` (relative key to content)."""
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            found[item["Key"].removeprefix(f"{prefix}/")] = body
    return found


def pending_uploads(client: Any, prefix: str) -> list[str]:
    """Multipart uploads started under ``prefix`` and neither completed nor aborted."""
    listing = client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [upload["Key"] for upload in listing.get("Uploads", [])]


def table(rows: int) -> RenderedTable:
    outputs = OutputsTable(["answer"])
    outputs.add([ExecutionResult(True, output_parameters={"answer": i / 3}) for i in range(rows)])
    return RenderedTable(outputs.build(), OutputFormat.CSV)


def content(index: int, name: str) -> bytes:
    return f"{name}@{index}".encode()


async def achunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def run(
    where: ObjectStoragePath, files: dict[int, list[str]], *, path: str = "sync"
) -> dict[str, Any]:
    """One whole collect run through the writer (sync or async file writes); the manifest."""
    writer = OutputWriter(where)
    plans = [f for index, names in files.items() for f in plan_row_files(index, names)]
    rendered = table(max(files, default=0) + 1)
    planned = [rendered.name, *(f.path for f in plans)]
    if path == "sync":
        writer.begin(planned)
        landed = [writer.write_file(f, [content(f.index, f.name)]) for f in plans]
    else:

        async def land() -> list[WrittenFile]:
            await writer.abegin(planned)
            return [await writer.awrite_file(f, achunks(content(f.index, f.name))) for f in plans]

        landed = asyncio.run(land())
    writer.write_table(rendered)
    writer.remove_leftovers([rendered.name, *(f.path for f in landed)])
    manifest = manifest_of_run(rendered, landed)
    writer.finish(manifest)
    return manifest


@pytest.mark.parametrize("path", ["sync", "async"])
def test_each_file_is_one_put_with_no_copy_or_delete(
    s3: Any, server: CountingS3Server, prefix: str, path: str
) -> None:
    files = {i: ["a.csv", "b.png"] for i in range(5)}
    manifest = run(destination(prefix), files, path=path)
    counts = server.counts
    # Ten row files, the table, the journal and the manifest: a PUT each.
    assert counts["PutObject"] == 13
    assert counts["CopyObject"] == 0
    assert sum(counts[name] for name in DELETES) == 1  # the journal, once the manifest is in
    written = [key for name, key in server.keys if name == "PutObject"]
    assert not [key for key in written if key.endswith(".tmp")]
    stored = keys(s3, prefix)
    assert set(stored) == {MANIFEST_NAME, "outputs.csv", *(e["path"] for e in manifest["files"])}
    for entry in manifest["files"]:
        body = stored[entry["path"]]
        assert len(body) == entry["size"]
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]

    # A re-run replacing fewer rows: its own PUTs, and deletes only of what it withdraws.
    server.reset()
    run(destination(prefix), {0: ["a.csv"]}, path=path)
    counts = server.counts
    assert counts["CopyObject"] == 0
    assert counts["PutObject"] == 4
    # The withdrawn manifest, nine files of the earlier run, the journal.
    assert sum(counts[name] for name in DELETES) == 11
    assert set(keys(s3, prefix)) == {MANIFEST_NAME, "outputs.csv", "files/0/a.csv"}


def test_a_large_file_is_a_multipart_upload_unseen_until_completed(
    s3: Any, server: CountingS3Server, prefix: str
) -> None:
    writer = OutputWriter(destination(prefix))
    planned = plan_row_files(0, ["big.bin"])[0]
    writer.begin([planned.path])
    key = f"{prefix}/{planned.path}"
    seen_before_the_end: list[bool] = []
    body = bytes(range(256)) * (4 * 20 * 1024)  # 20 MiB

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), MIB):
            yield body[start : start + MIB]
        listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=key)
        seen_before_the_end.append(listing["KeyCount"] > 0)

    server.reset()
    written = asyncio.run(writer.awrite_file(planned, stream()))
    counts = server.counts
    assert seen_before_the_end == [False]
    assert counts["CreateMultipartUpload"] == 1
    assert counts["UploadPart"] == 3  # 8 MiB, 8 MiB, then the last 4 MiB
    assert counts["CompleteMultipartUpload"] == 1
    assert counts["PutObject"] == counts["CopyObject"] == 0
    assert sum(counts[name] for name in DELETES) == 0
    stored = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert stored == body
    assert (written.size, written.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    assert pending_uploads(s3, prefix) == []


def broken_stream(size: int) -> Iterator[bytes]:
    """``size`` bytes in 1 MiB chunks, then the connection resets."""
    for start in range(0, size, MIB):
        yield b"n" * min(MIB, size - start)
    raise ConnectionResetError("reset mid-download")


async def abroken_stream(size: int) -> AsyncIterator[bytes]:
    for chunk in broken_stream(size):
        yield chunk


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("size", [3 * MIB, 10 * MIB], ids=["one-put", "multipart"])
def test_a_stream_broken_mid_file_leaves_the_previous_object(
    s3: Any, server: CountingS3Server, prefix: str, path: str, size: int
) -> None:
    run(destination(prefix), {0: ["a.bin"]})
    planned = plan_row_files(0, ["a.bin"])[0]
    writer = OutputWriter(destination(prefix))
    writer.begin([planned.path])
    server.reset()
    with pytest.raises(ConnectionResetError):
        if path == "sync":
            writer.write_file(planned, broken_stream(size))
        else:
            asyncio.run(writer.awrite_file(planned, abroken_stream(size)))
    counts = server.counts
    assert s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{planned.path}")["Body"].read() == (
        content(0, "a.bin")
    )
    assert pending_uploads(s3, prefix) == []
    assert counts["PutObject"] == counts["CompleteMultipartUpload"] == 0
    if size > storage.UPLOAD_PART_BYTES:
        assert counts["UploadPart"] == 1 and counts["AbortMultipartUpload"] == 1
    # The same write again (a retry) lands.
    again = writer.write_file(planned, [b"x" * size])
    assert s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{planned.path}")["ContentLength"] == size
    assert again.size == size


@pytest.mark.parametrize(
    ("failing", "size"),
    [("PutObject", 3 * MIB), ("UploadPart", 10 * MIB), ("CompleteMultipartUpload", 10 * MIB)],
)
def test_a_request_the_server_fails_leaves_the_previous_object(
    s3: Any, server: CountingS3Server, prefix: str, failing: str, size: int
) -> None:
    run(destination(prefix), {0: ["a.bin"]})
    planned = plan_row_files(0, ["a.bin"])[0]
    key = f"{prefix}/{planned.path}"
    writer = OutputWriter(destination(prefix, ONCE_CONN))
    writer.begin([planned.path])
    with (
        server.failing(lambda name, target: name == failing and target.endswith(key)),
        pytest.raises(OSError, match="injected fault"),
    ):
        writer.write_file(planned, [b"y" * MIB for _ in range(size // MIB)])
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == content(0, "a.bin")
    assert pending_uploads(s3, prefix) == []
    writer.write_file(planned, [b"y" * size])
    assert s3.get_object(Bucket=BUCKET, Key=key)["ContentLength"] == size


# A writer process killed in the middle of a file: the child SIGKILLs itself.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    from airflow.sdk import ObjectStoragePath
    from airflow_provider.outputs import OutputWriter, plan_row_files

    writer = OutputWriter(ObjectStoragePath({destination!r}))
    planned = plan_row_files(0, ["a.bin"]) + plan_row_files(1, ["b.bin"])
    writer.begin(["outputs.csv", *(f.path for f in planned)])
    writer.write_file(planned[0], [b"new a"])

    def dying():
        for _ in range({chunks}):
            yield b"k" * (1 << 20)
        os.kill(os.getpid(), signal.SIGKILL)

    writer.write_file(planned[1], dying())
    """
)


@pytest.mark.parametrize("size", [3, 10], ids=["one-put", "multipart"])
def test_a_killed_writer_leaves_no_partial_object_and_the_next_run_finishes(
    s3: Any, server: CountingS3Server, prefix: str, size: int
) -> None:
    run(destination(prefix), {0: ["a.bin"], 2: ["c.bin"]})
    script = CHILD.format(
        repo=str(REPO), destination=f"s3://{CONN}@{BUCKET}/{prefix}/", chunks=size
    )
    server.reset()
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=120, env=dict(os.environ)
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    counts = server.counts
    assert counts["UploadPart"] == (1 if size * MIB > storage.UPLOAD_PART_BYTES else 0)
    after_crash = keys(s3, prefix)
    assert MANIFEST_NAME not in after_crash  # withdrawn: a reader never takes it as complete
    assert after_crash["files/0/a.bin"] == b"new a"
    assert "files/1/b.bin" not in after_crash  # nothing half-written under the final key
    assert not [key for key in after_crash if key.endswith(".tmp")]

    manifest = run(destination(prefix), {1: ["b.bin"]})
    assert set(keys(s3, prefix)) == {MANIFEST_NAME, "outputs.csv", "files/1/b.bin"}
    assert [entry["path"] for entry in manifest["files"]] == ["files/1/b.bin"]


def test_two_writers_of_one_key_never_mix_their_bytes(
    s3: Any, server: CountingS3Server, prefix: str
) -> None:
    """A second worker writing the same destination: each object is one writer's whole
    file (the upload completed last), never parts of both."""
    planned = plan_row_files(0, ["a.bin"])[0]
    first, second = OutputWriter(destination(prefix)), OutputWriter(destination(prefix))
    first.begin([planned.path])
    second.begin([planned.path])
    part_sent, second_done = threading.Event(), threading.Event()
    large = b"1" * (9 * MIB) + b"2" * MIB

    def first_chunks() -> Iterator[bytes]:
        yield large[: 9 * MIB]  # over the part size: one part is uploaded
        part_sent.set()
        assert second_done.wait(60)
        yield large[9 * MIB :]

    results: list[WrittenFile] = []
    thread = threading.Thread(
        target=lambda: results.append(first.write_file(planned, first_chunks()))
    )
    thread.start()
    assert part_sent.wait(60)
    small = second.write_file(planned, [b"second's whole file"])
    assert s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{planned.path}")["Body"].read() == (
        b"second's whole file"
    )
    second_done.set()
    thread.join(60)
    stored = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{planned.path}")["Body"].read()
    assert stored == large
    assert hashlib.sha256(stored).hexdigest() == results[0].sha256 != small.sha256
    assert pending_uploads(s3, prefix) == []


def test_a_destination_with_odd_characters_is_written_exactly_under_it(
    s3: Any, prefix: str
) -> None:
    odd = f"{prefix}/sp ace/ü%20+;=@x/q?x=1#frag"
    outside = f"{prefix}/sp ace/kept.txt"
    s3.put_object(Bucket=BUCKET, Key=outside, Body=b"mine")
    run(destination(odd), {0: ["a.csv"], 1: ["b.csv"]})
    run(destination(odd), {1: ["b.csv"]})
    everything = keys(s3, prefix)
    assert everything[outside.removeprefix(f"{prefix}/")] == b"mine"
    ours = {k.removeprefix(odd.removeprefix(f"{prefix}/") + "/") for k in everything}
    assert ours == {"sp ace/kept.txt", MANIFEST_NAME, "outputs.csv", "files/1/b.csv"}


def test_the_memory_file_system_is_written_whole_without_a_move(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())

    def no_move(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a file was moved into place")

    monkeypatch.setattr(MemoryFileSystem, "mv", no_move)
    root = f"memory://outputs-{uuid.uuid4().hex[:8]}"
    fs = MemoryFileSystem()
    run(ObjectStoragePath(f"{root}/"), {0: ["a.csv"]})
    planned = plan_row_files(0, ["a.csv"])[0]
    writer = OutputWriter(ObjectStoragePath(f"{root}/"))
    writer.begin([planned.path])
    with pytest.raises(ConnectionResetError):
        writer.write_file(planned, broken_stream(2 * MIB))
    base = ObjectStoragePath(f"{root}/").path
    assert fs.cat_file(f"{base}/{planned.path}") == content(0, "a.csv")  # never half a new one
    left = {path.removeprefix(f"{base}/") for path in fs.find(base)}
    assert left == {"files/0/a.csv", "outputs.csv", JOURNAL_NAME}  # no temporary file


class _FileSystem:
    def __init__(self, protocol: str | tuple[str, ...]) -> None:
        self.protocol = protocol


@pytest.mark.parametrize(
    ("protocol", "direct"),
    [
        (("s3", "s3a"), True),
        (("gs", "gcs"), True),
        ("memory", True),
        (("abfs", "az"), False),
        ("sftp", False),
        (("hdfs", "arrow_hdfs"), False),
    ],
)
def test_only_stores_that_commit_whole_files_skip_the_temporary(
    protocol: str | tuple[str, ...], direct: bool
) -> None:
    ops = storage.file_ops_for(_FileSystem(protocol), lambda final: f"{final}.tmp")
    assert ops.uses_temporaries is not direct


class _GenericMemory(MemoryFileSystem):
    """A memory file system under a protocol of its own: written as SFTP, HDFS or Azure are,
    through a temporary name and fsspec's generic move (copy, then remove)."""

    protocol = ("genericmem",)


@pytest.mark.parametrize("path", ["sync", "async"])
def test_the_generic_path_moves_names_with_glob_characters_and_drops_emptied_folders(
    path: str,
) -> None:
    """The move read its source as a glob pattern, so a name with ``[1]`` was "not found";
    and a row folder emptied by a later run stayed."""
    import fsspec
    from airflow.sdk.io import attach

    # Known to fsspec (universal_pathlib asks it) and to Airflow's object storage.
    fsspec.register_implementation("genericmem", _GenericMemory, clobber=True)
    attach("genericmem", fs=_GenericMemory())
    destination = ObjectStoragePath(f"genericmem:///generic-{uuid.uuid4().hex[:8]}/out")
    fs, base = destination.fs, destination.path.rstrip("/")
    assert type(storage.file_ops_for(fs, lambda final: final)) is storage.FsspecFileOps
    names = ["a[1].csv", "d[!x].csv", "plain.csv"]
    run(destination, {0: names, 1: ["e.csv"]}, path=path)
    assert {p.removeprefix(f"{base}/") for p in fs.find(base)} == {
        *(f"files/0/{name}" for name in names),
        "files/1/e.csv",
        "outputs.csv",
        MANIFEST_NAME,
    }
    assert fs.cat_file(f"{base}/files/0/a[1].csv") == content(0, "a[1].csv")
    run(destination, {0: ["a[1].csv"]}, path=path)
    assert [p.removeprefix(f"{base}/") for p in fs.ls(f"{base}/files", detail=False)] == ["files/0"]


def test_a_store_that_refuses_deletes_is_named_with_the_object_and_the_fix(
    s3: Any, server: CountingS3Server, prefix: str
) -> None:
    """A bucket policy allowing writes but not deletes: the first run's manifest landed, then
    removing its journal failed with the store's bare "Access Denied", which named neither the
    object nor the call; every retry failed the same way withdrawing the manifest."""
    where = destination(prefix, ONCE_CONN)
    with (
        server.failing(lambda name, key: name in ("DeleteObject", "DeleteObjects"), denied=True),
        pytest.raises(MrsDeployDestinationError) as info,
    ):
        run(where, {0: ["a.csv"]})
    message = str(info.value)
    assert "refused to delete" in message and f"{prefix}/" in message
    assert "Allow deleting objects" in message
    assert "manifest.json" in keys(s3, prefix)  # what landed stays
