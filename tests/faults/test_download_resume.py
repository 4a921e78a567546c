"""Connections reset in the middle of a file download (through the fault proxy).

The hook resumes the download from the first byte the consumer has not seen, so collect's
writer, which hashes the chunks as they arrive, still lands complete files whose checksums
match the server's. The reference server streams large files from disk and honours ``Range``
(the resume is a ``206``); small files it sends from memory and ignores ``Range`` (the resume is
a full ``200`` whose already-delivered part the hook skips). Both paths are exercised.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.api import MrsDeployConnectionError
from airflow_provider.hooks import MrsDeployHook
from tests.faults.helpers import ECHO, check_manifest, collect, echo_rows, server_file
from tests.faults.proxy import FaultProxy
from tests.hooks.helpers import wait_terminal
from tests.support.server import ReferenceServer

#: echo.txt of each row is 100 KB: a reset after 20 KB is well inside the body.
ROWS = echo_rows(3, text_size=1000, repeat=100)
#: One row whose echo.txt (400 KB) is large enough to be streamed with Range support.
LARGE = echo_rows(1, text_size=1000, repeat=400)
FILE = r"/files/echo\.txt$"


def finished_echo_batch(rows: list[dict[str, Any]] = ROWS) -> str:
    hook = MrsDeployHook()
    try:
        batch_id = hook.start_batch(*ECHO, json.dumps(rows).encode())
        wait_terminal(hook, ECHO, batch_id)
        return batch_id
    finally:
        hook.close()


def test_collect_resumes_files_cut_mid_download(
    proxied_conn: str,
    proxy: FaultProxy,
    reference_server: ReferenceServer,
    task_context: Any,
    tmp_path: Path,
    all_logs: Callable[[], str],
) -> None:
    batch_id = finished_echo_batch()
    proxy.reset_after(20_000, times=2, path_regex=FILE)
    result = collect(
        task_context, batch_id, tmp_path / "out", service=ECHO, max_concurrent_downloads=1
    )
    assert proxy.stats.resets == 2  # two downloads really were cut
    assert result["rows"] == 3 and result["files"] == 3
    manifest = check_manifest(tmp_path / "out")
    for entry in manifest["files"]:
        expected = server_file(reference_server, ECHO, batch_id, entry["index"], "echo.txt")
        assert entry["size"] == len(expected) > 100_000
        assert entry["sha256"] == hashlib.sha256(expected).hexdigest()
    resumes = [line for line in all_logs().splitlines() if "interrupted after" in line]
    assert len(resumes) == 2, resumes
    assert all("echo.txt" in line for line in resumes)


@pytest.mark.parametrize(
    ("rows", "resumed_with"), [(ROWS, 200), (LARGE, 206)], ids=["range-ignored", "range"]
)
def test_repeated_resets_are_resumed(
    rows: list[dict[str, Any]],
    resumed_with: int,
    proxied_conn: str,
    proxy: FaultProxy,
    reference_server: ReferenceServer,
) -> None:
    """Every request for the file is cut after 20 KB, four times: it still arrives whole."""
    batch_id = finished_echo_batch(rows)
    hook = MrsDeployHook()
    proxy.reset_after(20_000, times=4, path_regex=FILE)
    content = b"".join(hook.iter_batch_file(*ECHO, batch_id, 0, "echo.txt", chunk_size=4096))
    hook.close()
    assert proxy.stats.resets == 4
    assert content == server_file(reference_server, ECHO, batch_id, 0, "echo.txt")
    assert proxy.stats.statuses[-5:] == [200] + [resumed_with] * 4


def test_download_gives_up_when_every_attempt_is_cut_without_progress(
    reference_server: ReferenceServer,
    proxy: FaultProxy,
    tmp_path: Path,
    task_context: Any,
    set_default_conn: Callable[..., str],
) -> None:
    """A server that never lets a byte of the body through: a clear error, no manifest."""
    set_default_conn(proxy.port, reference_server.admin_password, max_retries=2)
    batch_id = finished_echo_batch()
    (tmp_path / "out").mkdir()
    previous = {"batch_ids": ["earlier"], "table": {"path": "outputs.parquet"}, "files": []}
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(previous))  # an earlier run's
    proxy.reset_after(0, times=None, path_regex=FILE)
    with pytest.raises(MrsDeployConnectionError) as info:
        collect(task_context, batch_id, tmp_path / "out", service=ECHO)
    assert "echo.txt" in str(info.value)
    assert not (tmp_path / "out" / "manifest.json").exists()  # withdrawn, never rewritten
    assert not list((tmp_path / "out").rglob("*.tmp"))  # no half-written file left behind
