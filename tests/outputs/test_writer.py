"""The writer on a real local disk: it touches only what Collect owns, never follows a link,
and a run killed at any step leaves a destination the next run finishes exactly."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider.api import ExecutionResult
from airflow_provider.outputs import (
    JOURNAL_NAME,
    MrsDeployDestinationError,
    OutputFormat,
    OutputsTable,
    OutputWriter,
    RenderedTable,
    WrittenFile,
    check_destination,
    plan_row_files,
)
from airflow_provider.outputs.manifest import encode_manifest
from airflow_provider.outputs.names import PlannedFile
from airflow_provider.outputs.storage import LocalFileOps
from tests.outputs.helpers import manifest_of_run

REPO = Path(__file__).resolve().parents[2]


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: file contents, link targets, folders."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[relative] = f"-> {os.readlink(path)}"
        elif path.is_dir():
            found[relative] = "<folder>"
        else:
            found[relative] = path.read_bytes()
    return found


def rendered(rows: int, fmt: OutputFormat = OutputFormat.PARQUET) -> RenderedTable:
    table = OutputsTable(["answer"])
    table.add([ExecutionResult(True, output_parameters={"answer": i / 3}) for i in range(rows)])
    return RenderedTable(table.build(), fmt)


def run(
    destination: Path,
    files: dict[int, list[str]],
    *,
    fmt: OutputFormat = OutputFormat.PARQUET,
    logger: logging.Logger | None = None,
) -> list[WrittenFile]:
    """One whole collect run through the writer: row ``i`` gets the named files."""
    writer = OutputWriter(ObjectStoragePath(f"file://{destination}"), logger=logger)
    plans = [f for index, names in files.items() for f in plan_row_files(index, names)]
    table = rendered(max(files, default=0) + 1, fmt)
    writer.begin([table.name, *(f.path for f in plans)])
    landed = [writer.write_file(f, [f"{f.name}@{f.index}".encode()]) for f in plans]
    writer.write_table(table)
    writer.remove_leftovers([table.name, *(f.path for f in landed)])
    writer.finish(manifest_of_run(table, landed))
    return landed


def expected_tree(
    files: dict[int, list[str]], fmt: OutputFormat = OutputFormat.PARQUET
) -> set[str]:
    paths = {"manifest.json", f"outputs.{fmt.value}"}
    for index, names in files.items():
        if names:
            paths |= {"files", f"files/{index}"}
            paths |= {f.path for f in plan_row_files(index, names)}
    return paths


def plant_foreign(root: Path) -> None:
    """Things a user keeps in a folder Collect writes to."""
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "notes.txt").write_text("mine")
    (root / "files" / "0").mkdir(parents=True)
    (root / "files" / "0" / "mine.txt").write_text("mine too")
    (root / "files" / "77").mkdir()
    (root / "files" / "77" / "other.bin").write_bytes(b"\x00")
    (root / "empty-folder").mkdir()
    partition = root / "chunk=0000"
    partition.mkdir()
    (partition / "manifest.json").write_text(
        json.dumps({"batch_ids": ["x"], "table": {}, "files": []})
    )
    (partition / "outputs.parquet").write_bytes(b"PAR1")
    (partition / "files" / "0").mkdir(parents=True)
    (partition / "files" / "0" / "a.csv").write_text("a")


def foreign_part(tree: dict[str, bytes | str]) -> dict[str, bytes | str]:
    return {
        k: v
        for k, v in tree.items()
        if k.startswith((".git", "notes.txt", "empty-folder", "chunk=", "files/0/mine", "files/77"))
    }


def test_a_run_lays_out_table_files_and_manifest_and_leaves_nothing_else(tmp_path: Path) -> None:
    destination = tmp_path / "out"
    files = {0: ["a.csv", "../a.csv"], 2: ["plot.png"]}
    landed = run(destination, files)
    assert set(snapshot(destination)) == expected_tree(files)
    manifest = json.loads((destination / "manifest.json").read_text())
    assert len(manifest["files"]) == 3 == len({f["path"] for f in manifest["files"]})
    by_path = {file.path: file for file in landed}
    for entry in manifest["files"]:
        content = (destination / entry["path"]).read_bytes()
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]
        assert by_path[entry["path"]].sha256 == entry["sha256"]


def test_reruns_replace_only_what_collect_wrote(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    destination = tmp_path / "out"
    plant_foreign(destination)
    before = foreign_part(snapshot(destination))
    run(destination, {0: ["a.csv"], 1: ["b.csv"], 5: ["c.csv"]}, fmt=OutputFormat.CSV)
    with caplog.at_level(logging.INFO):
        run(destination, {0: ["z.csv"]}, logger=logging.getLogger("collect-test"))
    after = snapshot(destination)
    assert foreign_part(after) == before
    ours = set(after) - set(foreign_part(after))
    assert ours == expected_tree({0: ["z.csv"]}) | {"files/0"}
    removed = [r.getMessage() for r in caplog.records if "Removed 4 files" in r.getMessage()]
    assert removed and "files/0/a.csv" in removed[0] and "outputs.csv" in removed[0]


def test_a_foreign_file_at_a_path_collect_must_write_fails_before_anything_is_written(
    tmp_path: Path,
) -> None:
    destination = tmp_path / "out"
    run(destination, {0: ["a.csv"]})
    (destination / "files" / "3").mkdir()
    (destination / "files" / "3" / "report.txt").write_text("a user's report")
    (destination / "outputs.csv").write_text("a user's table")
    before = snapshot(destination)
    with pytest.raises(MrsDeployDestinationError) as error:
        run(destination, {0: ["a.csv"], 3: ["report.txt"]}, fmt=OutputFormat.CSV)
    message = str(error.value)
    assert "files/3/report.txt" in message and "outputs.csv" in message
    assert "Nothing was written" in message
    assert snapshot(destination) == before


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("manifest.json", b'{"project": "someone else\'s manifest"}'),
        (JOURNAL_NAME, b"not a journal"),
    ],
)
def test_a_foreign_manifest_or_journal_is_never_replaced(
    tmp_path: Path, name: str, content: bytes
) -> None:
    destination = tmp_path / "out"
    destination.mkdir()
    (destination / name).write_bytes(content)
    with pytest.raises(MrsDeployDestinationError, match=name.replace(".", r"\.")):
        run(destination, {0: ["a.csv"]})
    assert snapshot(destination) == {name: content}


@pytest.mark.parametrize("name", ["manifest.json", JOURNAL_NAME])
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_fifo_or_folder_at_a_reserved_name_is_refused_without_waiting(
    tmp_path: Path, name: str, kind: str
) -> None:
    """A FIFO there was taken for a file, and reading it waited for a writer for ever; a
    folder at the journal's name failed with a bare IsADirectoryError."""
    destination = tmp_path / "out"
    destination.mkdir()
    if kind == "fifo":
        os.mkfifo(destination / name)
    else:
        (destination / name).mkdir()
    outcome: list[BaseException] = []

    def collect() -> None:
        try:
            run(destination, {0: ["a.csv"]})
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=collect, daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():  # unblock it: open the FIFO for writing
        os.close(os.open(destination / name, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"the run waited on the {kind} at {name}")
    (error,) = outcome
    assert isinstance(error, MrsDeployDestinationError)
    assert f"{name} (a {'symbolic link or special file' if kind == 'fifo' else 'folder'})" in str(
        error
    )
    assert sorted(p.name for p in destination.iterdir()) == [name]


def test_reading_a_fifo_put_there_after_the_listing_does_not_wait(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "manifest.json")
    ops = LocalFileOps(lambda name: name + ".tmp")
    base = ops.open_base(str(tmp_path))
    with pytest.raises(MrsDeployDestinationError, match="not a regular file"):
        ops.read(f"{base}/manifest.json")
    ops.close()


def test_a_linked_row_folder_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    destination, victim = tmp_path / "out", tmp_path / "victim"
    victim.mkdir()
    (victim / "a.csv").write_text("victim's")
    run(destination, {3: ["a.csv"]})
    # Someone swaps the row folder for a link to elsewhere.
    (destination / "files" / "3" / "a.csv").unlink()
    (destination / "files" / "3").rmdir()
    (destination / "files" / "3").symlink_to(victim)
    with pytest.raises(MrsDeployDestinationError, match=r"files/3 \(a symbolic link"):
        run(destination, {3: ["a.csv"]})
    # A run that no longer writes row 3 does not delete through the link either.
    run(destination, {0: ["b.csv"]})
    assert snapshot(victim) == {"a.csv": b"victim's"}
    assert (destination / "files" / "3").is_symlink()


def test_a_linked_files_folder_is_refused(tmp_path: Path) -> None:
    destination, victim = tmp_path / "out", tmp_path / "victim"
    victim.mkdir()
    destination.mkdir()
    (destination / "files").symlink_to(victim)
    with pytest.raises(MrsDeployDestinationError, match=r"files \(a symbolic link"):
        run(destination, {0: ["a.csv"]})
    assert snapshot(victim) == {}


def test_a_link_at_an_owned_file_is_replaced_not_written_through(tmp_path: Path) -> None:
    destination, victim = tmp_path / "out", tmp_path / "victim.txt"
    victim.write_text("victim's")
    run(destination, {0: ["a.csv"]})
    (destination / "files" / "0" / "a.csv").unlink()
    (destination / "files" / "0" / "a.csv").symlink_to(victim)
    run(destination, {0: ["a.csv"]})
    assert victim.read_text() == "victim's"
    landed = destination / "files" / "0" / "a.csv"
    assert not landed.is_symlink() and landed.read_bytes() == b"a.csv@0"


def test_a_row_folder_turned_into_a_link_mid_run_is_not_written_through(tmp_path: Path) -> None:
    destination, victim = tmp_path / "out", tmp_path / "victim"
    victim.mkdir()
    writer = OutputWriter(ObjectStoragePath(f"file://{destination}"))
    planned = plan_row_files(4, ["a.csv"])
    writer.begin(["outputs.parquet", planned[0].path])
    (destination / "files" / "4").symlink_to(victim)  # after the check, before the write
    with pytest.raises(MrsDeployDestinationError, match="not a folder"):
        writer.write_file(planned[0], [b"x"])
    assert snapshot(victim) == {}


def test_a_linked_destination_is_written_at_its_real_path(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    run(tmp_path / "alias", {0: ["a.csv"]})
    assert (real / "files" / "0" / "a.csv").read_bytes() == b"a.csv@0"


@pytest.mark.parametrize(
    "destination",
    ["", "  ", "/data/../victim", "s3://bucket/scores/../victim/", "rel/..", "C:\\x\\..\\y"],
)
def test_destinations_that_climb_or_are_empty_are_refused(destination: str) -> None:
    with pytest.raises(MrsDeployDestinationError):
        check_destination(destination)


def test_a_destination_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("keep")
    with pytest.raises(MrsDeployDestinationError, match="is an existing file"):
        run(target, {0: ["a.csv"]})
    assert target.read_text() == "keep"


def test_an_edited_manifest_cannot_make_collect_delete_other_files(tmp_path: Path) -> None:
    destination = tmp_path / "out"
    run(destination, {0: ["a.csv"]})
    (tmp_path / "victim.txt").write_text("keep")
    (destination / "notes.txt").write_text("keep")
    manifest = json.loads((destination / "manifest.json").read_text())
    manifest["files"] += [{"path": "../victim.txt"}, {"path": "notes.txt"}, {"path": "/etc/hosts"}]
    (destination / "manifest.json").write_text(json.dumps(manifest))
    run(destination, {1: ["b.csv"]})
    assert (tmp_path / "victim.txt").read_text() == "keep"
    assert (destination / "notes.txt").read_text() == "keep"


def test_a_manifest_edited_to_hold_an_escaped_lone_surrogate_does_not_stop_the_next_run(
    tmp_path: Path,
) -> None:
    """JSON may escape a lone surrogate (``"\\udc80"``), which has no UTF-8 form: the run that
    carries such a manifest in its journal, and records such a path as owned, still runs."""
    destination = tmp_path / "out"
    run(destination, {0: ["a.csv"]})
    manifest = json.loads((destination / "manifest.json").read_text())
    manifest["service"]["name"] = "s\udc80"
    manifest["files"].append({"index": 9, "path": "files/9/\udc80.csv"})
    (destination / "manifest.json").write_text(json.dumps(manifest))  # ASCII, escaped
    run(destination, {1: ["b.csv"]})
    assert json.loads((destination / "manifest.json").read_text())["service"]["name"] == "s"
    assert (destination / "files" / "1" / "b.csv").read_bytes() == b"b.csv@1"


@pytest.mark.parametrize(
    "extra", [{}, {"repairs": [{"note": "\udc80", "rows": [1]}]}], ids=["plain", "lone-surrogate"]
)
def test_the_manifest_is_sorted_indented_json_whichever_encoder_writes_it(
    extra: dict[str, Any],
) -> None:
    """The same text shape from msgspec and from the standard encoder it falls back to when a
    copied entry holds a string UTF-8 cannot encode."""
    manifest = {"zeta": [1, 2.5, None, True], "alpha": {"b": "é", "a": []}, **extra}
    text = encode_manifest(manifest)
    assert json.loads(text) == manifest
    assert text.decode("ascii" if extra else "utf-8").splitlines()[:3] == [
        "{",
        '  "alpha": {',
        '    "a": [],',
    ]


# A run killed at each step: the child runs the writer and SIGKILLs itself at one point.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    from tests.outputs import test_writer as w
    from airflow_provider.outputs import writer as module

    stage = {stage!r}
    original = {{
        "write_file": module.OutputWriter.write_file,
        "write_table": module.OutputWriter.write_table,
        "remove_leftovers": module.OutputWriter.remove_leftovers,
        "begin": module.OutputWriter.begin,
        "finish": module.OutputWriter.finish,
    }}
    written = []

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def begin(self, planned):
        original["begin"](self, planned)
        if stage == "after-withdrawing-the-manifest":
            die()

    def write_file(self, planned, chunks):
        if stage == "mid-download" and len(written) == 2:
            target = self._open_target(planned)
            target.write(b"half a file")
            # Row files are written with plain system calls: the half file is on disk now.
            assert os.path.getsize(target.upload.temporary) == len(b"half a file")
            die()
        written.append(planned)
        return original["write_file"](self, planned, chunks)

    def write_table(self, table):
        name = original["write_table"](self, table)
        if stage == "after-the-table":
            die()
        return name

    def remove_leftovers(self, keep):
        removed = original["remove_leftovers"](self, keep)
        if stage == "before-the-manifest":
            die()
        return removed

    def finish(self, manifest):
        self._atomic_bytes(module.MANIFEST_NAME, b"{{}}")
        if stage == "after-the-manifest":
            die()
        return original["finish"](self, manifest)

    for name, patched in [("begin", begin), ("write_file", write_file),
                          ("write_table", write_table), ("remove_leftovers", remove_leftovers),
                          ("finish", finish)]:
        setattr(module.OutputWriter, name, patched)
    w.run(w.Path({destination!r}), {{i: ["r.csv", "s.csv"] for i in range(4)}},
          fmt=w.OutputFormat.CSV)
    """
)
STAGES = [
    "after-withdrawing-the-manifest",
    "mid-download",
    "after-the-table",
    "before-the-manifest",
    "after-the-manifest",
]


@pytest.mark.parametrize("stage", STAGES)
def test_a_run_killed_at_any_step_is_finished_exactly_by_the_next(
    tmp_path: Path, stage: str
) -> None:
    destination = tmp_path / "out"
    plant_foreign(destination)
    foreign = foreign_part(snapshot(destination))
    first = {i: ["old.csv"] for i in range(6)}
    run(destination, first)
    script = CHILD.format(repo=str(REPO), stage=stage, destination=str(destination))
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    after_crash = snapshot(destination)
    assert foreign_part(after_crash) == foreign
    if stage != "after-the-manifest":
        assert "manifest.json" not in after_crash  # a reader never sees a half-replaced folder
    if stage == "mid-download":
        assert any(name.endswith(".tmp") for name in after_crash)

    final = {1: ["new.csv"]}
    run(destination, final)
    tree = snapshot(destination)
    assert foreign_part(tree) == foreign
    ours = set(tree) - set(foreign_part(tree))
    assert ours == expected_tree(final) | {"files/0"}  # files/0 holds the user's mine.txt
    assert not [name for name in tree if name.endswith(".tmp") or JOURNAL_NAME in name]
    table = pd.read_parquet(destination / "outputs.parquet")
    assert list(table["index"]) == [0, 1]


def test_two_crashes_in_a_row_are_cleared_by_one_finished_run(tmp_path: Path) -> None:
    destination = tmp_path / "out"
    for stage in ("mid-download", "after-the-table"):
        script = CHILD.format(repo=str(REPO), stage=stage, destination=str(destination))
        child = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
        assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    run(destination, {0: ["a.csv"]})
    assert set(snapshot(destination)) == expected_tree({0: ["a.csv"]})


async def _chunks(*parts: bytes) -> Any:
    for part in parts:
        yield part


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_row_folder_linked_mid_run_is_refused_on_both_paths(tmp_path: Path, path: str) -> None:
    """The same guard holds for ``write_file`` and ``awrite_file`` (Collect's path)."""
    import asyncio

    destination, victim = tmp_path / "out", tmp_path / "victim"
    victim.mkdir()
    writer = OutputWriter(ObjectStoragePath(f"file://{destination}"))
    planned = plan_row_files(2, ["a.csv"])[0]
    asyncio.run(writer.abegin(["outputs.csv", planned.path]))
    (destination / "files" / "2").symlink_to(victim)
    with pytest.raises(MrsDeployDestinationError, match="not a folder"):
        if path == "sync":
            writer.write_file(planned, [b"x"])
        else:
            asyncio.run(writer.awrite_file(planned, _chunks(b"x")))
    assert snapshot(victim) == {}


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_broken_download_leaves_no_file_on_both_paths(tmp_path: Path, path: str) -> None:
    import asyncio

    destination = tmp_path / "out"
    writer = OutputWriter(ObjectStoragePath(f"file://{destination}"))
    planned = plan_row_files(0, ["a.bin"])[0]
    writer.begin([planned.path])

    def broken() -> Any:
        yield b"partial"
        raise ConnectionResetError("reset mid-download")

    async def abroken() -> Any:
        yield b"partial"
        raise ConnectionResetError("reset mid-download")

    with pytest.raises(ConnectionResetError):
        if path == "sync":
            writer.write_file(planned, broken())
        else:
            asyncio.run(writer.awrite_file(planned, abroken()))
    assert [p for p in destination.rglob("*") if p.is_file()] == [destination / JOURNAL_NAME]


def test_files_cannot_be_written_before_begin(tmp_path: Path) -> None:
    writer = OutputWriter(ObjectStoragePath(f"file://{tmp_path}/out"))
    with pytest.raises(RuntimeError, match="begin"):
        writer.write_file(plan_row_files(0, ["a"])[0], [b"x"])
    assert not (tmp_path / "out").exists()


class _OsWithShortWrites:
    """The ``os`` module as the storage module sees it, with writes that stop after a few
    bytes (a signal, a disk filling up: nothing a test can make a real disk do on demand),
    and that fail with "no space left" once ``fail_after`` bytes were written."""

    def __init__(self, step: int, fail_after: int | None = None) -> None:
        self.step = step
        self.fail_after = fail_after
        self.written = 0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: Any) -> int:
        self.calls += 1
        if self.fail_after is not None and self.written >= self.fail_after:
            raise OSError(28, "No space left on device")
        done = os.write(fd, bytes(data[: self.step]))
        self.written += done
        return done


def _open_descriptors(under: Path | None = None) -> int:
    """This process's open descriptors; with ``under``, only those of files and folders
    below it (others come and go with whatever else runs in the process)."""
    if under is None:
        return len(os.listdir("/proc/self/fd"))
    prefix = f"{os.path.realpath(under)}/"
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(prefix)
    return count


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_write_that_stops_part_way_goes_on_with_the_rest_on_both_paths(
    tmp_path: Path, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row files are written with plain system calls, which may write less than they were
    given: the rest is written, and the file and its checksum are whole."""
    import asyncio

    from airflow_provider.outputs import storage

    short = _OsWithShortWrites(step=7)
    monkeypatch.setattr(storage, "os", short)
    writer = OutputWriter(ObjectStoragePath(f"file://{tmp_path}/out"))
    planned = plan_row_files(0, ["a.bin"])[0]
    writer.begin([planned.path])
    chunks = [bytes(range(256)) * 3, b"", b"tail"]
    if path == "sync":
        written = writer.write_file(planned, chunks)
    else:
        written = asyncio.run(writer.awrite_file(planned, _chunks(*chunks)))
    data = (tmp_path / "out" / planned.path).read_bytes()
    assert data == b"".join(chunks) and short.calls >= len(data) // 7
    assert written.size == len(data) and written.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_disk_that_fills_up_mid_file_leaves_no_file_and_no_open_descriptor(
    tmp_path: Path, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from airflow_provider.outputs import storage

    destination = tmp_path / "out"
    initial = _open_descriptors(tmp_path)
    writer = OutputWriter(ObjectStoragePath(f"file://{destination}"))
    whole, planned = plan_row_files(0, ["whole.bin", "a.bin"])
    writer.begin([whole.path, planned.path])
    writer.write_file(whole, [b"w"])  # the row's folder is open now, kept for its next file
    before = _open_descriptors(tmp_path)
    monkeypatch.setattr(storage, "os", _OsWithShortWrites(step=100, fail_after=300))
    with pytest.raises(OSError, match="No space left"):
        if path == "sync":
            writer.write_file(planned, [b"x" * 1000])
        else:
            asyncio.run(writer.awrite_file(planned, _chunks(b"x" * 1000)))
    monkeypatch.undo()
    assert _open_descriptors(tmp_path) == before
    files = {p.relative_to(destination).as_posix() for p in destination.rglob("*") if p.is_file()}
    assert files == {JOURNAL_NAME, whole.path}
    writer.close()  # and the folders the writer kept open are closed
    assert _open_descriptors(tmp_path) == initial


def test_a_row_file_closed_twice_is_harmless(tmp_path: Path) -> None:
    from airflow_provider.outputs.storage import Descriptor

    handle = Descriptor(os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600))
    assert handle.write(b"abc") == 3
    handle.close()
    handle.close()
    with pytest.raises(OSError):
        handle.write(b"after close")
    assert (tmp_path / "f").read_bytes() == b"abc"


# A link swapped in mid-run, after every check: the folders below the destination are reached
# from open descriptors, never by a path walked again, so nothing is written or deleted
# through the link (the run is refused, or lands in the folder it had opened).


def _begin(writer: OutputWriter, path: str, planned: list[str]) -> None:
    if path == "sync":
        writer.begin(planned)
    else:
        asyncio.run(writer.abegin(planned))


def _write(writer: OutputWriter, path: str, planned: PlannedFile, data: bytes) -> None:
    if path == "sync":
        writer.write_file(planned, [data])
    else:
        asyncio.run(writer.awrite_file(planned, _chunks(data)))


def _refused_or_done(call: Callable[[], object]) -> None:
    """Run one step of a run whose folder was swapped for a link: it may be refused, as
    Collect refuses a link where it needs a folder, or go on in the folder it had opened."""
    with contextlib.suppress(MrsDeployDestinationError):
        call()


def _swap_for_link(folder: Path, target: Path, how: str) -> None:
    """Replace ``folder`` by a link to ``target``: the folder deleted, or moved aside."""
    if how == "deleted":
        shutil.rmtree(folder)
    else:
        folder.rename(folder.with_name(f"{folder.name}-moved"))
    folder.symlink_to(target)


def _victim(root: Path, files: dict[str, str]) -> dict[str, bytes | str]:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return snapshot(root)


@pytest.mark.parametrize("how", ["deleted", "moved"])
@pytest.mark.parametrize("path", ["sync", "async"])
def test_files_swapped_for_a_link_after_begin_is_not_written_or_deleted_through(
    tmp_path: Path, path: str, how: str
) -> None:
    destination, victim = tmp_path / "out", tmp_path / "victim"
    run(destination, {0: ["a.csv"], 1: ["b.csv"]})  # an earlier run owns files/0, files/1
    before = _victim(victim, {"0/a.csv": "victim's", "1/b.csv": "victim's too"})
    writer = OutputWriter(ObjectStoragePath(f"file://{destination}"))
    planned = plan_row_files(2, ["c.csv"])[0]
    _begin(writer, path, ["outputs.parquet", planned.path])
    _swap_for_link(destination / "files", victim, how)
    _refused_or_done(lambda: _write(writer, path, planned, b"through the link?"))
    _refused_or_done(lambda: writer.remove_leftovers(["outputs.parquet", planned.path]))
    assert snapshot(victim) == before
    writer.close()


@pytest.mark.parametrize("how", ["deleted", "moved"])
@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_row_folder_swapped_for_a_link_between_two_of_its_files_is_not_written_through(
    tmp_path: Path, path: str, how: str
) -> None:
    destination, victim = tmp_path / "out", tmp_path / "victim"
    before = _victim(victim, {"keep.txt": "victim's"})
    writer = OutputWriter(ObjectStoragePath(f"file://{destination}"))
    first, second = plan_row_files(2, ["a.csv", "b.csv"])
    _begin(writer, path, ["outputs.parquet", first.path, second.path])
    _write(writer, path, first, b"one")
    _swap_for_link(destination / "files" / "2", victim, how)
    _refused_or_done(lambda: _write(writer, path, second, b"two, through the link?"))
    assert snapshot(victim) == before
    writer.close()


@pytest.mark.parametrize("rewritten", [False, True], ids=["row-not-rewritten", "row-rewritten"])
@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_row_folder_swapped_for_a_link_before_the_leftovers_go_is_not_deleted_through(
    tmp_path: Path, path: str, rewritten: bool
) -> None:
    destination, victim = tmp_path / "out", tmp_path / "victim"
    run(destination, {0: ["x.csv"], 3: ["old.csv"]})  # an earlier run owns files/3/old.csv
    before = _victim(victim, {"old.csv": "victim's own file"})
    writer = OutputWriter(ObjectStoragePath(f"file://{destination}"))
    planned = plan_row_files(3 if rewritten else 2, ["new.csv"])[0]
    _begin(writer, path, ["outputs.parquet", planned.path])
    _write(writer, path, planned, b"new")
    _swap_for_link(destination / "files" / "3", victim, "deleted")
    _refused_or_done(lambda: writer.remove_leftovers(["outputs.parquet", planned.path]))
    assert snapshot(victim) == before
    writer.close()


def test_a_run_keeps_a_bounded_number_of_folders_open_and_closes_them(tmp_path: Path) -> None:
    """Rows landed many at a time, each file in several chunks, keep at most the destination,
    ``files`` and the recently used row folders open (and a folder a file is being written in
    is never closed under it); finishing, or dropping a failed writer, closes them all."""
    from airflow_provider.outputs.storage import KEPT_ROW_FOLDERS

    initial = _open_descriptors(tmp_path)
    destination = tmp_path / "out"
    writer = OutputWriter(ObjectStoragePath(f"file://{destination}"))
    plans = [plan_row_files(index, ["a.csv", "b.csv", "c.csv"]) for index in range(60)]
    table = rendered(60)
    _begin(writer, "async", [table.name, *(f.path for row in plans for f in row)])
    most = 0

    async def slowly(data: bytes) -> AsyncIterator[bytes]:
        nonlocal most
        for part in (data[:2], data[2:]):
            await asyncio.sleep(0)
            most = max(most, _open_descriptors(tmp_path) - initial)
            yield part

    async def land(row: list[PlannedFile]) -> list[WrittenFile]:
        return [await writer.awrite_file(f, slowly(f"{f.path}!".encode())) for f in row]

    async def land_all() -> list[list[WrittenFile]]:
        return await asyncio.gather(*(land(row) for row in plans))

    landed = [f for row in asyncio.run(land_all()) for f in row]
    # 60 rows written at once (each holding its folder and a file), then the cache's own.
    assert most <= 2 + 60 * 2 + 8  # (the event loop's own descriptors: a few)
    writer.write_table(table)
    writer.remove_leftovers([table.name, *(f.path for f in landed)])
    assert _open_descriptors(tmp_path) - initial <= 2 + KEPT_ROW_FOLDERS
    writer.finish(manifest_of_run(table, landed))
    assert _open_descriptors(tmp_path) == initial
    assert all((destination / f.path).read_bytes() == f"{f.path}!".encode() for f in landed)

    failed = OutputWriter(ObjectStoragePath(f"file://{tmp_path}/failed"))
    failed.begin([plans[0][0].path])
    failed.write_file(plans[0][0], [b"x"])
    assert _open_descriptors(tmp_path) == initial + 3
    del failed
    gc.collect()
    assert _open_descriptors(tmp_path) == initial
