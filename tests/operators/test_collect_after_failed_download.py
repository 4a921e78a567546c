"""Against the reference server: a collect whose download of a row's first file fails leaves
that row's folder empty; the next collect into the same destination ends with exactly its own
outputs, that folder gone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.outputs import MANIFEST_NAME
from tests.operators.test_collect import CARS, collect, finished_batch


def tree(root: Path) -> set[str]:
    """Every path under ``root``, folders ending with ``/``."""
    return {
        p.relative_to(root).as_posix() + ("/" if p.is_dir() and not p.is_symlink() else "")
        for p in root.rglob("*")
    }


def test_the_next_collect_removes_the_row_folder_a_failed_download_left(
    reference_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    task_context: dict[str, Any],
    faults: Any,
    tmp_path: Path,
) -> None:
    connection = reference_server.airflow_connection(max_retries=0)
    monkeypatch.setenv("AIRFLOW_CONN_MRSDEPLOY_DEFAULT", json.dumps(connection))
    destination = tmp_path / "out"
    four_rows = finished_batch()
    failing = {"status": 503, "count": 50, "method": "GET"}
    failing["pathRegex"] = r"/batch/[^/]+/3/files/answer\.csv"
    faults({"service": "mtService", "httpErrors": [failing]})
    with pytest.raises(Exception, match="503"):
        collect(four_rows, destination, max_concurrent_downloads=1).execute(task_context)
    assert {path for path in tree(destination) if path.startswith("files/3/")} == {"files/3/"}

    faults({"service": "none"})
    collect(finished_batch(CARS[:1]), destination).execute(task_context)
    manifest = json.loads((destination / MANIFEST_NAME).read_text())
    recorded = {MANIFEST_NAME, manifest["table"]["path"], *(f["path"] for f in manifest["files"])}
    assert tree(destination) == recorded | {"files/", "files/0/"}
