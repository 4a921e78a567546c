"""Records read from and outputs written to S3, through a real S3-compatible server on loopback."""

from __future__ import annotations

import hashlib
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider.operators import MrsDeployCollectBatchOperator, MrsDeploySubmitBatchOperator
from airflow_provider.sample_data import mtcars_csv_path

BUCKET = "lake"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An ``aws`` connection ``moto_s3`` to the loopback server, and a client with a bucket."""
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MOTO_S3", json.dumps(connection))
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    if BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=BUCKET)
    return client


def collect_to(
    context: Any, batch_set: dict[str, Any], destination: str, output_format: str = "parquet"
) -> dict[str, Any]:
    """Collect a Submit task's batch set (it names its service) into ``destination``."""
    return dict(
        MrsDeployCollectBatchOperator(
            task_id="collect",
            batch_id=batch_set,
            destination=destination,
            output_format=output_format,
        ).execute(context)
    )


def keys(client: Any, prefix: str) -> list[str]:
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.mark.parametrize("output_format", ["parquet", "csv", "jsonl"])
def test_submit_from_s3_and_collect_to_s3(
    s3: Any, mrsdeploy_conn: str, task_context: Any, output_format: str, tmp_path: Path
) -> None:
    cars = pd.read_csv(mtcars_csv_path())
    body = io.BytesIO()
    cars.to_parquet(body)
    s3.put_object(Bucket=BUCKET, Key="cars/2026-01-01.parquet", Body=body.getvalue())
    batch_set = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="mtService",
        service_version="v1.0.0",
        records=f"s3://moto_s3@{BUCKET}/cars/2026-01-01.parquet",
        wait_for_completion=True,
        poll_interval=0.1,
    ).execute(task_context)
    prefix = f"scores/{output_format}/2026-01-01"
    # An object no collect recorded is someone else's: it stays.
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/files/99/theirs.csv", Body=b"theirs")
    destination = f"s3://moto_s3@{BUCKET}/{prefix}/"
    result = collect_to(task_context, batch_set, destination, output_format)
    assert result["rows"] == 32
    stored = keys(s3, prefix)
    assert f"{prefix}/manifest.json" in stored
    assert f"{prefix}/outputs.{output_format}" in stored
    assert s3.get_object(Bucket=BUCKET, Key=f"{prefix}/files/99/theirs.csv")["Body"].read() == (
        b"theirs"
    )
    assert not [k for k in stored if k.endswith(".tmp")]
    manifest = json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"{prefix}/manifest.json")["Body"].read()
    )
    assert manifest["counts"]["rows"] == 32
    for entry in manifest["files"]:
        obj = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{entry['path']}")
        assert obj["ContentLength"] == entry["size"]
    table_bytes = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/outputs.{output_format}")[
        "Body"
    ].read()
    path = tmp_path / f"outputs.{output_format}"
    path.write_bytes(table_bytes)
    if output_format == "parquet":
        table = pd.read_parquet(path)
    elif output_format == "csv":
        table = pd.read_csv(path)
    else:
        table = pd.read_json(path, lines=True)
    assert list(table["index"]) == list(range(32)) and table["success"].all()


@pytest.mark.parametrize("whole_file_bytes", [1 << 20, 0], ids=["whole", "streamed"])
def test_files_to_s3_land_whole_or_streamed(
    s3: Any,
    mrsdeploy_conn: str,
    task_context: Any,
    tmp_path: Path,
    whole_file_bytes: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On an object store, a file up to ``WHOLE_FILE_BYTES`` is received whole and written in
    one call on a worker thread, a larger one streamed chunk by chunk: both land exactly the
    bytes a local collect of the same batch lands."""
    from airflow_provider.outputs import writer

    batch_set = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="mtService",
        service_version="v1.0.0",
        records=pd.read_csv(mtcars_csv_path()).head(6),
        wait_for_completion=True,
        poll_interval=0.1,
    ).execute(task_context)

    collect_to(task_context, batch_set, str(tmp_path / "local"))
    expected = json.loads((tmp_path / "local" / "manifest.json").read_text())["files"]
    monkeypatch.setattr(writer, "WHOLE_FILE_BYTES", whole_file_bytes)
    prefix = f"by-size/{whole_file_bytes}"
    result = collect_to(task_context, batch_set, f"s3://moto_s3@{BUCKET}/{prefix}/")
    assert result["files"] == len(expected) >= 6
    manifest = json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"{prefix}/manifest.json")["Body"].read()
    )
    assert manifest["files"] == expected
    for entry in expected:
        body = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{entry['path']}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
    assert not [k for k in keys(s3, prefix) if k.endswith(".tmp")]


def scored(task_context: Any, rows: int) -> dict[str, Any]:
    """The batch set of ``rows`` mtcars rows, scored."""
    return dict(
        MrsDeploySubmitBatchOperator(
            task_id="submit",
            service_name="mtService",
            service_version="v1.0.0",
            records=pd.read_csv(mtcars_csv_path()).head(rows),
            wait_for_completion=True,
            poll_interval=0.1,
        ).execute(task_context)
    )


def test_collect_to_s3_replaces_only_what_collect_wrote(
    s3: Any, mrsdeploy_conn: str, task_context: Any
) -> None:
    """On an object store too: recorded objects are replaced or removed, others never."""
    from airflow_provider.outputs import MrsDeployDestinationError

    prefix = "owned/2026-01-02"
    foreign = {
        f"{prefix}/notes.txt": b"mine",
        f"{prefix}/files/0/mine.txt": b"mine too",
        f"{prefix}/chunk=0000/outputs.parquet": b"another partition",
        f"{prefix}/chunk=0000/manifest.json": b'{"batch_ids": [], "table": {}, "files": []}',
    }
    for key, body in foreign.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def collect(batch_set: dict[str, Any], output_format: str = "parquet") -> dict[str, Any]:
        return collect_to(
            task_context, batch_set, f"s3://moto_s3@{BUCKET}/{prefix}/", output_format
        )

    collect(scored(task_context, 6), "csv")
    first = set(keys(s3, prefix))
    assert f"{prefix}/files/5/answer.csv" in first and f"{prefix}/outputs.csv" in first
    collect(scored(task_context, 2))
    stored = set(keys(s3, prefix))
    for key, body in foreign.items():
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    ours = stored - set(foreign)
    assert {k.removeprefix(f"{prefix}/").split("/")[0] for k in ours} == {
        "files",
        "outputs.parquet",
        "manifest.json",
    }
    assert {k.split("/")[3] for k in ours if "/files/" in k} == {"0", "1"}
    assert not [k for k in stored if k.endswith(".tmp") or ".mrsdeploy-" in k]

    # A foreign object where Collect must write: refused before anything changes.
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/outputs.jsonl", Body=b"theirs")
    before = {k: s3.get_object(Bucket=BUCKET, Key=k)["ETag"] for k in keys(s3, prefix)}
    with pytest.raises(MrsDeployDestinationError, match=r"outputs\.jsonl"):
        collect(scored(task_context, 2), "jsonl")
    after = {k: s3.get_object(Bucket=BUCKET, Key=k)["ETag"] for k in keys(s3, prefix)}
    assert after == before


@pytest.mark.parametrize("gap", ["//", "/./"])
def test_a_destination_with_an_empty_segment_is_refused_before_anything_is_written(
    s3: Any, mrsdeploy_conn: str, task_context: Any, gap: str
) -> None:
    """``s3://lake//out`` wrote keys ``/out/...`` while the store listed them as ``out/...``:
    the writer saw an empty destination, and overwrote what a user kept there."""
    theirs = "/gap/outputs.csv" if gap == "//" else "./gap/outputs.csv"
    s3.put_object(Bucket=BUCKET, Key=theirs, Body=b"theirs")
    before = keys(s3, "")
    batch_set = MrsDeploySubmitBatchOperator(
        task_id="submit",
        service_name="mtService",
        service_version="v1.0.0",
        records=[{"hp": 110, "wt": 2.62}],
        wait_for_completion=True,
        poll_interval=0.1,
    ).execute(task_context)
    with pytest.raises(Exception, match=r"has an empty or '\.' segment") as info:
        collect_to(task_context, batch_set, f"s3://moto_s3@{BUCKET}{gap}gap/", "csv")
    assert type(info.value).__name__ == "MrsDeployDestinationError"
    assert keys(s3, "") == before
    assert s3.get_object(Bucket=BUCKET, Key=theirs)["Body"].read() == b"theirs"
