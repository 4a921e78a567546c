"""What a destination must look like before anything is fetched: a local path that names one
folder wherever the worker runs, and a place that can be a folder (not a file, not below one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider.outputs import MrsDeployDestinationError, check_destination
from airflow_provider.outputs.writer import check_destination_folder


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("~/scores", "starts with '~'"),
        ("~", "starts with '~'"),
        ("~airflow/scores", "starts with '~'"),
        ("scores", "relative path"),
        ("./scores/2026-01-01/", "relative path"),
        ("file://localhost/data/scores", r"host 'localhost'.*file:///data/scores"),
        ("file://data/scores", r"host 'data'.*file:///scores"),
        ("local://node-1/data", "host 'node-1'"),
        ("file:scores", "relative path"),
        ("file://", "relative path"),
        ("FILE:~/scores", "starts with '~'"),
    ],
)
def test_local_destinations_that_depend_on_the_current_folder_are_refused(
    destination: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MrsDeployDestinationError, match=message):
        check_destination(destination)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "destination",
    [
        "/data/scores",
        "/data/scores/",
        " /data/scores\n",
        "//data/scores",
        "/data/~scores",
        "file:///data/scores/",
        "file:/data/scores",
        "FILE:///data/scores",
        "local:///data/scores",
        "s3://lake/scores/2026-01-01/",
        "s3://aws_conn@lake/scores/",
        "gs://lake/scores",
        "memory://outputs/run",
        "abfs://container@account.dfs.core.windows.net/scores",
    ],
)
def test_absolute_paths_and_object_store_urls_are_kept(destination: str) -> None:
    assert check_destination(destination) == destination.strip()


def test_a_missing_folder_and_a_folder_pass(tmp_path: Path) -> None:
    check_destination_folder(ObjectStoragePath(str(tmp_path / "new" / "scores")))
    check_destination_folder(ObjectStoragePath(f"file://{tmp_path}"))


def test_a_link_to_a_folder_passes(tmp_path: Path) -> None:
    """The writer resolves a linked destination once, at the user's choice."""
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    check_destination_folder(ObjectStoragePath(str(tmp_path / "alias")))


@pytest.mark.parametrize("kind", ["file", "link to a file", "dangling link", "below a file"])
def test_what_cannot_be_a_folder_is_refused(tmp_path: Path, kind: str) -> None:
    (tmp_path / "a-file").write_text("mine")
    target = {
        "file": tmp_path / "a-file",
        "link to a file": tmp_path / "link",
        "dangling link": tmp_path / "dangling",
        "below a file": tmp_path / "a-file" / "scores",
    }[kind]
    os.symlink(tmp_path / "a-file", tmp_path / "link")
    os.symlink(tmp_path / "nothing", tmp_path / "dangling")
    with pytest.raises(MrsDeployDestinationError, match="existing file, not a folder"):
        check_destination_folder(ObjectStoragePath(str(target)))
    assert (tmp_path / "a-file").read_text() == "mine"
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize(
    "destination",
    ["s3://lake//scores", "s3://conn@lake/a//b/", "gs://lake/./scores", "s3://lake/a/."],
)
def test_object_store_destinations_with_an_empty_or_dot_segment_are_refused(
    destination: str,
) -> None:
    """A store keeps such a segment in its keys but drops it from listings: what is there
    could not be checked before writing."""
    with pytest.raises(MrsDeployDestinationError, match=r"has an empty or '\.' segment"):
        check_destination(destination)


@pytest.mark.parametrize("destination", ["/data//scores", "file:///data//scores", "s3://b/a/"])
def test_a_doubled_slash_on_the_local_disk_or_at_the_end_is_kept(destination: str) -> None:
    assert check_destination(destination) == destination
