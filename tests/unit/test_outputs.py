from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider.api import ExecutionResult, MrsDeployError
from airflow_provider.outputs import (
    OutputFormat,
    OutputWriter,
    UnsafeFileNameError,
    build_manifest,
    build_outputs_table,
    safe_file_name,
)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("answer.csv", "answer.csv"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/x.png", "x.png"),
        ("a\x00b", "a_b"),
        ("..\\..\\win.txt", "win.txt"),
    ],
)
def test_safe_file_name(raw: str, safe: str) -> None:
    assert safe_file_name(raw) == safe


@pytest.mark.parametrize("raw", ["..", "/", "", "a/.."])
def test_unusable_names_are_refused(raw: str) -> None:
    with pytest.raises(UnsafeFileNameError):
        safe_file_name(raw)


def test_names_that_sanitise_alike_stay_apart_within_a_row(tmp_path) -> None:
    writer = OutputWriter(ObjectStoragePath(f"file://{tmp_path}/out"))
    first = writer.claim_name(0, "answer.csv")
    second = writer.claim_name(0, "../answer.csv")
    assert first == "answer.csv" and second != first and second.endswith(".csv")
    assert writer.claim_name(1, "../answer.csv") == "answer.csv"  # another row, no clash


def test_long_names_are_shortened_uniquely() -> None:
    a, b = safe_file_name("x" * 300 + "a"), safe_file_name("x" * 300 + "b")
    assert a != b and len(a.encode()) <= 200


def test_table_has_one_row_per_index_with_outputs_and_errors() -> None:
    results = [
        ExecutionResult(success=True, output_parameters={"answer": 0.5}),
        ExecutionResult(success=False, error_message="boom"),
        ExecutionResult(success=True, output_parameters={"answer": 0.25, "extra": [1, 2]}),
    ]
    inputs = pd.DataFrame({"hp": [1, 2, 3]})
    table = build_outputs_table(results, ["answer"], index_offset=10, inputs=inputs)
    assert list(table["index"]) == [10, 11, 12]
    assert list(table["success"]) == [True, False, True]
    assert table["error_message"][1] == "boom"
    assert table["answer"].tolist()[0] == 0.5 and pd.isna(table["answer"][1])
    assert table["extra"][2] == "[1,2]"
    assert list(table["input_hp"]) == [1, 2, 3]


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_writer_lays_out_files_table_and_manifest(tmp_path, fmt: OutputFormat) -> None:
    dest = ObjectStoragePath(f"file://{tmp_path}/out")
    writer = OutputWriter(dest)
    writer.begin()
    written = writer.write_file(0, "../evil.csv", iter([b"ab", b"cd"]))
    assert written.path == "files/0/evil.csv" and written.size == 4
    assert written.sha256 == hashlib.sha256(b"abcd").hexdigest()
    table = build_outputs_table(
        [ExecutionResult(True, output_parameters={"answer": 1.0})], ["answer"]
    )
    table_path = writer.write_table(table, fmt)
    assert writer.remove_leftovers([table_path, written.path]) == []
    manifest = build_manifest(
        batch_ids=["b1"],
        service_name="s",
        service_version="v",
        table_path=table_path,
        output_format=fmt,
        rows=1,
        failed_rows=0,
        files=[written],
    )
    writer.finish(manifest)
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk["counts"] == {
        "rows": 1,
        "succeeded_rows": 1,
        "failed_rows": 0,
        "files": 1,
        "bytes": 4,
    }
    assert (tmp_path / "out" / "files" / "0" / "evil.csv").read_bytes() == b"abcd"
    assert not list((tmp_path / "out").rglob("*.tmp"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["files", "manifest.json", table_path]
    )


def test_rerun_withdraws_manifest_and_removes_leftovers(tmp_path) -> None:
    dest = ObjectStoragePath(f"file://{tmp_path}/out")
    first = OutputWriter(dest)
    first.begin()
    first.write_file(5, "old.txt", [b"x"])
    first.finish({"counts": {}})
    second = OutputWriter(dest)
    second.begin()
    assert not (tmp_path / "out" / "manifest.json").exists()
    kept = second.write_file(0, "new.txt", [b"y"])
    assert second.remove_leftovers([kept.path]) == ["files/5/old.txt"]


def test_failed_write_leaves_no_partial_file(tmp_path) -> None:
    dest = ObjectStoragePath(f"file://{tmp_path}/out")
    writer = OutputWriter(dest)
    writer.begin()

    def broken():
        yield b"partial"
        raise ConnectionResetError("reset mid-download")

    with pytest.raises(ConnectionResetError):
        writer.write_file(0, "a.bin", broken())
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


def test_temporary_names_are_hidden_beside_the_file_and_never_repeat() -> None:
    from airflow_provider.outputs import _temporary_for

    names = {_temporary_for("/dest/files/3/plot.png") for _ in range(1000)}
    assert len(names) == 1000
    for name in names:
        folder, _, base = name.rpartition("/")
        assert folder == "/dest/files/3"
        assert base.startswith(".plot.png.") and base.endswith(".tmp")


def test_temporary_names_differ_in_a_forked_child() -> None:
    import os

    from airflow_provider.outputs import _temporary_for

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports the name it would pick next, then exits at once
        os.write(write, _temporary_for("/d/f").encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child and child != _temporary_for("/d/f")


def test_row_folders_are_made_below_missing_parents_and_reused(tmp_path) -> None:
    from airflow_provider.outputs import _LocalFileOps

    ops = _LocalFileOps()
    deep = tmp_path / "a" / "b" / "files" / "0"
    ops.makedirs(str(deep))
    ops.makedirs(str(deep))  # already there: fine
    ops.makedirs(str(deep.parent / "1"))
    assert sorted(p.name for p in deep.parent.iterdir()) == ["0", "1"]
    (tmp_path / "plain").write_text("x")
    with pytest.raises(FileExistsError):
        ops.makedirs(str(tmp_path / "plain"))


def test_table_built_a_batch_at_a_time_equals_the_table_built_at_once() -> None:
    from airflow_provider.outputs import OutputsTable

    first = [
        ExecutionResult(success=True, output_parameters={"answer": 0.5}),
        ExecutionResult(success=False, error_message="boom"),
    ]
    second = [
        ExecutionResult(success=True, output_parameters={"answer": 0.25, "extra": {"k": 1}}),
        ExecutionResult(success=True, output_parameters={"late": "x", "answer": 1.0}),
    ]
    table = OutputsTable(["answer"], index_offset=5)
    table.add(first)
    table.add([])
    table.add(second)
    assert len(table) == 4
    built = table.build()
    pd.testing.assert_frame_equal(
        built, build_outputs_table(first + second, ["answer"], index_offset=5)
    )
    assert list(built.columns) == ["index", "success", "error_message", "answer", "extra", "late"]
    assert built["extra"].isna().tolist() == [True, True, False, True]
    assert built["extra"][2] == '{"k":1}'
    assert built["late"].isna().tolist() == [True, True, True, False]
    assert built["late"][3] == "x"
    with pytest.raises(MrsDeployError, match="cannot put 3 input rows beside 4 results"):
        table.build(pd.DataFrame({"hp": [1, 2, 3]}))
