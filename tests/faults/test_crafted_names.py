"""Names from a server that no table or request can hold: an output named with a lone
surrogate (JSON escapes it, UTF-8 cannot encode it) and a changed file that no request path
can name. Each is refused as a provider error that names the row and the name, before the
destination is touched and before any file is requested."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.api import MrsDeployProtocolError
from airflow_provider.exceptions import MrsDeployOutputsError
from tests.faults.crafted import SERVICE, CraftedServer, status_answer
from tests.faults.helpers import collect

FORMATS = ["parquet", "csv", "jsonl"]


def untouched(destination: Path) -> bool:
    return not destination.exists() or not any(destination.iterdir())


@pytest.mark.parametrize("output_format", FORMATS)
def test_a_returned_output_named_with_a_lone_surrogate_is_refused(
    crafted: CraftedServer, task_context: Any, tmp_path: Path, output_format: str
) -> None:
    """It was a bare UnicodeEncodeError from pandas or the manifest's encoder."""
    crafted.answers.status = status_answer({}, output_parameters={"answer": 0.5, "a\ud800": 1})
    destination = tmp_path / "out"
    with pytest.raises(MrsDeployOutputsError) as info:
        collect(task_context, "b1", destination, output_format=output_format)
    message = str(info.value)
    assert "row 0 returned an output named 'a\\ud800'" in message, message
    assert "lone surrogate (U+D800)" in message and "nothing was written" in message
    assert untouched(destination)


def test_a_declared_output_named_with_a_lone_surrogate_is_refused(
    crafted: CraftedServer, task_context: Any, tmp_path: Path
) -> None:
    service = json.loads(SERVICE)
    service[0]["outputParameterDefinitions"].append({"name": "b\udc80", "type": "numeric"})
    crafted.answers.service = json.dumps(service).encode()
    destination = tmp_path / "out"
    with pytest.raises(MrsDeployOutputsError, match=r"the service declares an output named"):
        collect(task_context, "b1", destination, output_format="jsonl")
    assert untouched(destination)


def test_a_value_with_a_lone_surrogate_is_still_kept_in_json_lines(
    crafted: CraftedServer, task_context: Any, tmp_path: Path
) -> None:
    """The refusal is of the name only: a value JSON Lines can escape still lands."""
    crafted.answers.status = status_answer({}, output_parameters={"answer": "x\ud800"})
    collect(task_context, "b1", tmp_path / "out", output_format="jsonl", include_files=False)
    row = json.loads((tmp_path / "out" / "outputs.jsonl").read_text())
    assert row["answer"] == "x\ud800"


@pytest.mark.parametrize("name", ["p\ud800.txt", "..", "."])
def test_a_changed_file_no_request_can_name_is_refused_before_anything_lands(
    crafted: CraftedServer, task_context: Any, tmp_path: Path, name: str
) -> None:
    """It failed at its own download, after the destination was claimed and other rows'
    files had landed, with advice meant for a name a user passed."""
    crafted.answers.status = status_answer({}, changed_files=["ok.txt", name])
    destination = tmp_path / "out"
    with pytest.raises(MrsDeployProtocolError) as info:
        collect(task_context, "b1", destination)
    message = str(info.value)
    assert "row 0 (batch b1, row 0) names the changed file" in message, message
    assert "include_files=False" in message and "nothing was written" in message
    assert untouched(destination)
    assert not [path for _, path in crafted.answers.requests if "/files/" in path]
    # Without files, the outputs are collected.
    collect(task_context, "b1", destination, include_files=False)
    assert (destination / "manifest.json").is_file()


def test_a_file_landed_under_another_name_keeps_the_servers_name_in_the_manifest(
    crafted: CraftedServer, task_context: Any, tmp_path: Path
) -> None:
    """Names differing only in case or Unicode form are renamed apart, and a name with a
    reserved character is made safe: which server file each landed file is stays recorded."""
    names = ["plot.png", "Plot.png", "cafe\u0301.txt", "caf\u00e9.txt", "a:b.txt"]
    crafted.answers.status = status_answer({}, changed_files=names)
    destination = tmp_path / "out"
    collect(task_context, "b1", destination)
    entries = json.loads((destination / "manifest.json").read_text())["files"]
    by_server_name = {entry.get("server_name", entry["name"]): entry for entry in entries}
    assert sorted(by_server_name) == sorted(names)
    assert "server_name" not in by_server_name["plot.png"]
    for name in ("Plot.png", "caf\u00e9.txt", "a:b.txt"):
        entry = by_server_name[name]
        assert entry["name"] != name and entry["path"] == f"files/0/{entry['name']}"
        assert (destination / entry["path"]).is_file()
