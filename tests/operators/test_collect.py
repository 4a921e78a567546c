"""Collect against the real reference server: table, files, manifest, re-runs, row failures.

Its ``batch_id`` is the Submit task's batch set (which names its service and which rows each
batch holds), or plain ids with ``service_name`` and ``service_version``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.api import MrsDeployError
from airflow_provider.batch_set import BatchPart, BatchSet, MrsDeployBatchSetError
from airflow_provider.exceptions import MrsDeployRecordsError
from airflow_provider.hooks import MrsDeployHook
from airflow_provider.operators import MrsDeployCollectBatchOperator
from airflow_provider.operators.collect import MrsDeployFailedRowsError
from airflow_provider.waiting.tasks import MrsDeployBatchTimeoutError, wait_until_done
from tests.faults.helpers import submit

SERVICE = ("mtService", "v1.0.0")

CARS = [
    {"hp": 110, "wt": 2.62},
    {"hp": 93, "wt": 2.32},
    {"hp": 245, "wt": 3.84},
    {"hp": 66, "wt": 1.835},
]


def finished_batch(rows: list[dict[str, Any]] = CARS) -> str:
    hook = MrsDeployHook()
    try:
        batch_id = hook.start_batch("mtService", "v1.0.0", json.dumps(rows).encode())
        ref = BatchSet.of_ids(SERVICE, [batch_id])
        wait_until_done(hook, ref, poll_interval=0.1, deadline=None, cancel_on_timeout=True)
        return batch_id
    finally:
        hook.close()


def collect(batch_id: Any, destination: Path, **kwargs: Any) -> MrsDeployCollectBatchOperator:
    """A Collect of ``batch_id``: plain ids are of ``mtService`` (their service is passed
    along); a batch set names its own service, so none is passed with it."""
    if not isinstance(batch_id, (BatchSet, dict)):
        kwargs.setdefault("service_name", SERVICE[0])
        kwargs.setdefault("service_version", SERVICE[1])
    return MrsDeployCollectBatchOperator(
        task_id="collect", batch_id=batch_id, destination=str(destination), **kwargs
    )


def submitted(context: Any, rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Run a Submit task that waits for its batches; return ``submit.output`` (the set JSON)."""
    return submit(context, rows, SERVICE, wait_for_completion=True, poll_interval=0.1, **kwargs)


def test_collect_writes_table_files_and_manifest(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    batch_id = finished_batch()
    result = collect(batch_id, tmp_path / "out", records=CARS).execute(task_context)
    assert result["rows"] == 4 and result["failed_rows"] == 0 and result["files"] >= 4
    table = pd.read_parquet(tmp_path / "out" / "outputs.parquet")
    assert list(table["index"]) == [0, 1, 2, 3]
    assert table["success"].all()
    assert list(table["input_hp"]) == [110, 93, 245, 66]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["batch_ids"] == [batch_id]
    assert manifest["counts"]["rows"] == 4 and manifest["counts"]["files"] == result["files"]
    for entry in manifest["files"]:
        content = (tmp_path / "out" / entry["path"]).read_bytes()
        assert len(content) == entry["size"]
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]
    assert {e["index"] for e in manifest["files"]} == {0, 1, 2, 3}


def test_rerun_replaces_the_partition(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    destination = tmp_path / "out"
    collect(finished_batch(), destination, output_format="csv").execute(task_context)
    second = finished_batch(CARS[:2])
    collect(second, destination, output_format="csv").execute(task_context)
    table = pd.read_csv(destination / "outputs.csv")
    assert len(table) == 2
    assert sorted(p.name for p in (destination / "files").iterdir()) == ["0", "1"]
    assert json.loads((destination / "manifest.json").read_text())["batch_ids"] == [second]


def test_failed_rows_stay_in_the_table_and_policy_fails(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, faults: Any
) -> None:
    faults({"failRows": [1, 3]})
    batch_id = finished_batch()
    tolerant = collect(batch_id, tmp_path / "a", output_format="jsonl").execute(task_context)
    assert tolerant["failed_rows"] == 2
    rows = [
        json.loads(line) for line in (tmp_path / "a" / "outputs.jsonl").read_text().splitlines()
    ]
    assert [r["success"] for r in rows] == [True, False, True, False]
    assert rows[1]["error_message"]
    with pytest.raises(MrsDeployFailedRowsError, match="2 of 4 rows failed") as err:
        collect(batch_id, tmp_path / "b", max_failed_ratio=0.25).execute(task_context)
    assert "row 1:" in str(err.value)
    assert (tmp_path / "b" / "manifest.json").exists()


def test_collecting_an_unfinished_batch_is_refused(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, faults: Any
) -> None:
    faults({"rowDelaySeconds": 2.0})
    hook = MrsDeployHook()
    try:
        batch_id = hook.start_batch(
            "mtService", "v1.0.0", json.dumps(CARS).encode(), parallel_count=1
        )
        with pytest.raises(MrsDeployError, match="not complete yet"):
            collect(batch_id, tmp_path / "out").execute(task_context)
        assert not (tmp_path / "out" / "manifest.json").exists()
        ref = BatchSet.of_ids(SERVICE, [batch_id])
        with pytest.raises(MrsDeployBatchTimeoutError):
            wait_until_done(hook, ref, poll_interval=0.1, deadline=0.0, cancel_on_timeout=True)
    finally:
        hook.close()


def test_auto_listing_takes_names_from_the_results(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, faults: Any
) -> None:
    """``auto`` needs no listing call for rows whose result names their files; ``always`` lists."""
    batch_id = finished_batch(CARS[:2])
    # A name only the listing endpoint shows, and the server cannot serve.
    faults({"extraFileNames": ["only-listed.txt"]})
    auto = collect(batch_id, tmp_path / "auto").execute(task_context)
    assert auto["files"] == 4  # answer.csv and answer.png of both rows, no listing call made
    with pytest.raises(MrsDeployError, match="only-listed"):
        collect(batch_id, tmp_path / "always", file_listing="always").execute(task_context)


def test_collect_called_from_a_running_event_loop(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """Collect downloads on its own event loop; called where a loop already runs (from async
    code), it runs that loop in a helper thread instead of failing."""
    import asyncio

    batch_id = finished_batch()

    async def from_async_code() -> dict[str, Any]:
        return collect(batch_id, tmp_path / "out").execute(task_context)

    result = asyncio.run(from_async_code())
    assert result["rows"] == 4 and result["files"] >= 4
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["files"]) == result["files"]


def test_results_are_read_and_files_landed_with_the_heap_frozen(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The objects a task holds before Collect reads (Airflow, its imports: hundreds of
    thousands) are out of the collector's full passes while the results are read and the
    files land, and back in them afterwards: a pass over all of them during the read cost
    about 13 µs a row."""
    import gc

    batch_id = finished_batch()
    frozen: dict[str, int] = {}
    reading = MrsDeployHook.read_batch_results
    writing = MrsDeployHook.aiter_batch_file

    def read_batch_results(self: MrsDeployHook, *args: Any, **kwargs: Any) -> Any:
        frozen["reading"] = gc.get_freeze_count()
        return reading(self, *args, **kwargs)

    def aiter_batch_file(self: MrsDeployHook, *args: Any, **kwargs: Any) -> Any:
        frozen["landing"] = gc.get_freeze_count()
        return writing(self, *args, **kwargs)

    monkeypatch.setattr(MrsDeployHook, "read_batch_results", read_batch_results)
    monkeypatch.setattr(MrsDeployHook, "aiter_batch_file", aiter_batch_file)
    before = gc.get_freeze_count()
    alive = len(gc.get_objects())
    collect(batch_id, tmp_path / "out").execute(task_context)
    assert frozen["reading"] >= alive // 2 and frozen["landing"] >= alive // 2
    assert gc.get_freeze_count() == before


def test_nothing_is_written_until_every_batch_is_known_complete(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path, faults: Any
) -> None:
    """Results are read a batch at a time, but a later batch that failed or is still running
    stops the collect before any file of an earlier batch lands."""
    from airflow_provider.waiting.tasks import MrsDeployBatchFailedError

    complete = finished_batch(CARS[:2])
    faults({"failNextBatches": 1})
    hook = MrsDeployHook()
    try:
        failed = hook.start_batch("mtService", "v1.0.0", json.dumps(CARS[2:]).encode())
        while not hook.get_batch_status("mtService", "v1.0.0", failed).is_terminal:
            time.sleep(0.05)
    finally:
        hook.close()
    with pytest.raises(MrsDeployBatchFailedError, match=failed):
        collect([complete, failed], tmp_path / "failed").execute(task_context)
    assert not (tmp_path / "failed" / "files").exists()

    faults({"rowDelaySeconds": 2.0})
    hook = MrsDeployHook()
    try:
        running = hook.start_batch(
            "mtService", "v1.0.0", json.dumps(CARS[2:]).encode(), parallel_count=1
        )
        with pytest.raises(MrsDeployError, match="not complete yet"):
            collect([complete, running], tmp_path / "running").execute(task_context)
        assert not (tmp_path / "running" / "files").exists()
        hook.cancel_batch("mtService", "v1.0.0", running)
    finally:
        hook.close()


def test_a_batch_missing_results_is_refused_before_anything_is_written(
    task_context: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server answering ``Complete`` with fewer results than rows (not something the
    reference server does) must not produce a shorter table."""
    from airflow_provider.hooks.mock_transport import Answer, MockRequest, MockTransport

    def status(total: int, results: int) -> bytes:
        rows = [{"success": True, "outputParameters": {}}] * results
        answer = {"state": "Complete", "completedItemCount": total, "totalItemCount": total}
        return json.dumps({**answer, "batchExecutionResults": rows}).encode()

    answers = {"b1": status(2, 2), "b2": status(3, 1)}

    def server(request: MockRequest) -> Answer:
        if request.path == "/login":
            return 200, {"access_token": "t", "expires_in": 3600}
        if request.path.startswith("/services/"):
            return 200, [{"name": "mtService", "version": "v1.0.0"}]
        return 200, answers[request.path.rsplit("/", 1)[-1]]

    monkeypatch.setenv(
        "AIRFLOW_CONN_MRSDEPLOY_DEFAULT",
        json.dumps({"conn_type": "mrsdeploy", "host": "h.invalid", "login": "a", "password": "p"}),
    )
    operator = collect(["b1", "b2"], tmp_path / "out")
    operator.__dict__["hook"] = MrsDeployHook(transport=MockTransport(server))
    with pytest.raises(MrsDeployError, match="batch b2 reports 3 rows but returned 1 results"):
        operator.execute(task_context)
    assert not (tmp_path / "out").exists()


# -- the batch set -----------------------------------------------------------------------------


def test_the_submit_tasks_batch_set_alone_is_enough_to_collect(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """``batch_id=submit.output`` and nothing else: the set names its service and the rows of
    each batch, and the table comes back in input order. The text a template renders the set
    to (JSON, or ``str()`` of the dict) works the same way."""
    rows = [{"hp": 60 + 10 * i, "wt": 1.5 + 0.25 * i} for i in range(7)]
    output = submitted(task_context, rows, max_records_per_batch=3)
    batch_set = BatchSet.from_json(output)
    assert [(p.first_row, p.row_count) for p in batch_set.parts] == [(0, 3), (3, 3), (6, 1)]
    task_context["ti"].store.clear()  # nothing to read from the upstream task's XCom
    for name, given in (("set", output), ("json", json.dumps(output)), ("text", str(output))):
        destination = tmp_path / name
        operator = MrsDeployCollectBatchOperator(
            task_id="collect",
            batch_id=given,
            destination=str(destination),
            records=rows,
            include_files=False,
        )
        result = operator.execute(task_context)
        assert result["rows"] == 7 and result["failed_rows"] == 0
        table = pd.read_parquet(destination / "outputs.parquet")
        assert list(table["index"]) == list(range(7))
        assert list(table["input_hp"]) == [r["hp"] for r in rows]
        manifest = json.loads((destination / "manifest.json").read_text())
        assert manifest["batch_ids"] == list(batch_set.batch_ids)
        assert (manifest["service"]["name"], manifest["service"]["version"]) == SERVICE
    hook = MrsDeployHook()
    try:  # each row's answer is the one the service gives that row on its own
        for i, row in enumerate(rows):
            expected = hook.consume(*SERVICE, row).output_parameters["answer"]
            assert table["answer"][i] == pytest.approx(expected, abs=1e-12)
    finally:
        hook.close()


def test_a_plain_id_without_its_service_is_refused_naming_submit_output(
    task_context: Any, tmp_path: Path
) -> None:
    """The service is no longer read from the upstream task's XCom: a plain id must come with
    its service, whatever that XCom holds; nothing is asked or written."""
    task_context["ti"].store[("submit", "service_name")] = "mtService"
    task_context["ti"].store[("submit", "service_version")] = "v1.0.0"
    for given in ("abc", ["abc", "def"]):
        operator = MrsDeployCollectBatchOperator(
            task_id="collect", batch_id=given, destination=str(tmp_path / "out")
        )
        with pytest.raises(MrsDeployBatchSetError, match=r"names no service.*submit\.output"):
            operator.execute(task_context)
    assert not (tmp_path / "out").exists()


def rows_of(batch_set: BatchSet) -> list[tuple[int | None, int | None]]:
    return [(part.first_row, part.row_count) for part in batch_set.parts]


@pytest.mark.parametrize(
    ("claimed", "message"),
    [
        pytest.param(
            [(0, 3), (3, 2)],
            r"returned 2 results, but 3 rows were submitted in it; refusing to write",
            id="more-rows-than-returned",
        ),
        pytest.param(
            [(0, 2), (2, 1)],
            r"returned 2 results, but 1 rows were submitted in it; refusing to write",
            id="fewer-rows-than-returned",
        ),
        pytest.param(
            [(0, 2), (5, 2)],
            r"holds the rows from 5 on, but the batches before it hold 2 rows",
            id="a-gap-between-batches",
        ),
    ],
)
def test_a_batch_set_whose_rows_disagree_with_the_server_is_refused_before_writing(
    mrsdeploy_conn: str,
    task_context: Any,
    tmp_path: Path,
    claimed: list[tuple[int, int]],
    message: str,
) -> None:
    """The set says which rows each batch holds; a server answer that disagrees is refused,
    naming the batch, rather than written at the wrong rows. Nothing lands, and what the
    destination held is left as it was."""
    output = submitted(task_context, CARS, max_records_per_batch=2)
    batch_set = BatchSet.from_json(output)
    assert rows_of(batch_set) == [(0, 2), (2, 2)]
    wrong = BatchSet(
        SERVICE[0],
        SERVICE[1],
        tuple(
            BatchPart(part.batch_id, first, count)
            for part, (first, count) in zip(batch_set.parts, claimed, strict=True)
        ),
    )
    destination = tmp_path / "out"
    destination.mkdir()
    (destination / "keep.txt").write_text("keep")
    bad_batch = next(
        part.batch_id
        for part, right in zip(wrong.parts, batch_set.parts, strict=True)
        if part != right
    )
    with pytest.raises(MrsDeployError, match=message) as error:
        collect(wrong.to_json(), destination).execute(task_context)
    assert f"batch {bad_batch} " in str(error.value)
    assert [p.name for p in destination.iterdir()] == ["keep.txt"]
    # The set as submitted collects fine.
    assert collect(output, tmp_path / "right").execute(task_context)["rows"] == 4


def test_a_batch_set_out_of_input_order_is_refused_before_writing(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """Batches listed out of input order would put rows at the wrong indexes: refused."""
    output = submitted(task_context, CARS[:3], max_records_per_batch=2)
    first, second = BatchSet.from_json(output).parts
    swapped = BatchSet(SERVICE[0], SERVICE[1], (second, first))
    with pytest.raises(MrsDeployError, match="not in input order"):
        collect(swapped.to_json(), tmp_path / "out").execute(task_context)
    assert not (tmp_path / "out").exists()


def test_records_that_are_not_the_rows_submitted_are_refused(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """Collect reads ``records`` again, maybe on another worker or after the file changed:
    the fingerprint Submit recorded catches other rows before anything is written."""
    batch_set = submitted(task_context, CARS, max_records_per_batch=3)
    fingerprint = BatchSet.from_json(batch_set).records_sha256
    assert fingerprint is not None and len(fingerprint) == 64
    changed = [dict(car) for car in CARS]
    changed[3]["wt"] = 1.9
    with pytest.raises(MrsDeployRecordsError, match="not the rows submitted"):
        collect(batch_set, tmp_path / "other", records=changed).execute(task_context)
    assert not (tmp_path / "other").exists()
    # Extra columns and another column order do not matter: only what was sent does.
    same = [{"wt": car["wt"], "model": f"car {i}", "hp": car["hp"]} for i, car in enumerate(CARS)]
    collect(batch_set, tmp_path / "same", records=same).execute(task_context)
    manifest = json.loads((tmp_path / "same" / "manifest.json").read_text())
    assert manifest["records_sha256"] == fingerprint


def test_records_with_a_lone_surrogate_are_sent_escaped_and_put_beside_the_outputs(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """A records list whose text holds a lone surrogate (JSON escapes it; UTF-8 cannot encode
    it) is submitted and collected with it beside the outputs: kept escaped in JSON Lines,
    refused for CSV with a message that says what to do, before the destination is touched."""
    lone = "car \udc80"
    cars = [dict(car, model=lone if i == 2 else f"car {i}") for i, car in enumerate(CARS)]
    batch_set = submitted(task_context, cars)
    collect(batch_set, tmp_path / "scores", records=cars, output_format="jsonl").execute(
        task_context
    )
    lines = (tmp_path / "scores" / "outputs.jsonl").read_bytes().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["input_model"] for row in rows] == [car["model"] for car in cars]
    assert all(row["success"] for row in rows)
    with pytest.raises(MrsDeployError, match=r"row 2 of column 'input_model' holds a lone"):
        collect(batch_set, tmp_path / "csv", records=cars, output_format="csv").execute(
            task_context
        )
    assert not (tmp_path / "csv").exists()


def test_an_answer_escaping_a_lone_surrogate_is_collected(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """echoService prints its text, and fails on text of undecodable bytes: the answer escapes
    a lone surrogate in that row's console output. The streamed read of the results decoded no
    cut of it and reported the answer as cut off; read whole, it always parsed."""
    service = ("echoService", "v1.0.0")
    rows = [{"text": "a\udc80", "n": 1}, {"text": "ok", "n": 2}]
    batch_set = submit(task_context, rows, service, wait_for_completion=True, poll_interval=0.1)
    collect(batch_set, tmp_path / "echo", output_format="jsonl", max_failed_rows=1).execute(
        task_context
    )
    lines = (tmp_path / "echo" / "outputs.jsonl").read_bytes().splitlines()
    table = [json.loads(line) for line in lines]
    assert [row["success"] for row in table] == [False, True]
    assert "UnicodeEncodeError" in table[0]["error_message"] and table[1]["echo"] == "ok ok"


def test_a_destination_with_surrounding_whitespace_is_written_where_it_was_checked(
    mrsdeploy_conn: str, task_context: Any, tmp_path: Path
) -> None:
    """A trailing space (a template's, say): the check took the destination without it, and
    the files went to a folder whose name ends with it."""
    batch_id = finished_batch()
    op = collect(batch_id, tmp_path / "scores")
    op.destination = f"{tmp_path / 'scores'} "
    op.execute(task_context)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores"]
    assert (tmp_path / "scores" / "manifest.json").is_file()
