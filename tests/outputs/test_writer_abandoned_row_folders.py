"""A row folder an earlier run made and left empty (its download failed before the first byte,
or the run died there) is removed by the next run that finishes, which then holds exactly its
own outputs; no folder holding anything, and nothing through a link, is removed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider.outputs import JOURNAL_NAME, OutputWriter, plan_row_files
from tests.outputs.test_writer import expected_tree, rendered, run, snapshot


def refused() -> Iterator[bytes]:
    """A download that fails before its first byte (a 503 once retries ran out)."""
    raise ConnectionError("503 from the server")
    yield b""  # pragma: no cover - makes this a generator


async def arefused() -> AsyncIterator[bytes]:
    raise ConnectionError("503 from the server")
    yield b""  # pragma: no cover


def failed_run(destination: Path, path: str, rows: int = 4) -> None:
    """A run that lands rows 0 to ``rows - 2`` and fails on the first file of the last row."""
    writer = OutputWriter(ObjectStoragePath(f"file://{destination}"))
    plans = [f for index in range(rows) for f in plan_row_files(index, ["answer.csv"])]
    writer.begin([rendered(rows).name, *(f.path for f in plans)])
    for planned in plans[:-1]:
        writer.write_file(planned, [b"landed"])
    with pytest.raises(ConnectionError):
        if path == "sync":
            writer.write_file(plans[-1], refused())
        else:
            asyncio.run(writer.awrite_file(plans[-1], arefused()))
    writer.close()


@pytest.mark.parametrize("path", ["sync", "async"])
def test_the_next_run_removes_a_row_folder_a_failed_download_left_empty(
    tmp_path: Path, path: str
) -> None:
    destination = tmp_path / "out"
    failed_run(destination, path)
    after_failure = snapshot(destination)
    assert after_failure["files/3"] == "<folder>"
    assert not [name for name in after_failure if name.startswith("files/3/")]

    run(destination, {0: ["answer.csv"]})
    assert set(snapshot(destination)) == expected_tree({0: ["answer.csv"]})


def test_every_abandoned_row_folder_goes_even_when_this_run_writes_no_files(
    tmp_path: Path,
) -> None:
    destination = tmp_path / "out"
    failed_run(destination, "sync", rows=1)  # files/0 made, nothing landed in it
    run(destination, {})
    assert set(snapshot(destination)) == expected_tree({})


def test_a_folder_holding_anything_or_not_recorded_or_a_link_stays(tmp_path: Path) -> None:
    destination, victim = tmp_path / "out", tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").mkdir()  # an empty folder a link will lead to
    failed_run(destination, "sync", rows=6)  # files/5 left empty
    files = destination / "files"
    (files / "77").mkdir()  # the user's own empty folder: no collect recorded anything there
    (files / "2" / "answer.csv").unlink()
    (files / "2" / "mine.txt").write_text("the user's")  # a recorded row folder now holding a file
    (files / "4" / "answer.csv").unlink()
    (files / "4").rmdir()
    (files / "4").symlink_to(victim / "keep")  # a recorded row folder swapped for a link

    run(destination, {0: ["answer.csv"]})
    tree = snapshot(destination)
    assert "files/5" not in tree
    assert tree["files/77"] == "<folder>"
    assert tree["files/2/mine.txt"] == b"the user's"
    assert tree["files/4"].startswith("-> ")
    assert (victim / "keep").is_dir()
    assert not [name for name in tree if JOURNAL_NAME in name or name.endswith(".tmp")]
