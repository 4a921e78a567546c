"""A destination's bucket is the user's to create: against moto's S3 server on loopback, a run
into a bucket that does not exist fails before writing anything, naming the bucket, and the
bucket is not created."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider.outputs import MrsDeployDestinationError
from airflow_provider.outputs.writer import check_destination_folder
from tests.outputs.s3_server import CountingS3Server, server_environment, serving_bucket
from tests.outputs.test_object_store import keys, run

BUCKET = "outputs-tests"  # the bucket keys() reads
#: A connection of its own: Airflow keeps one file system per connection, which must talk to
#: this module's server, not to the object-store tests' one.
CONN = "moto_buckets"


@pytest.fixture(scope="module")
def server() -> Iterator[CountingS3Server]:
    with serving_bucket(BUCKET) as running:
        yield running


@pytest.fixture
def s3(server: CountingS3Server, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 client of the server, the connection set, the counts reset."""
    import boto3

    for name, value in server_environment(server.endpoint, CONN).items():
        monkeypatch.setenv(name, value)
    server.reset()
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1")


@pytest.fixture
def prefix() -> str:
    return f"run-{uuid.uuid4().hex[:8]}"


def buckets(client: Any) -> set[str]:
    return {bucket["Name"] for bucket in client.list_buckets()["Buckets"]}


def test_a_missing_bucket_is_refused_and_not_created(s3: Any, prefix: str) -> None:
    missing = f"typo-{prefix}"
    where = ObjectStoragePath(f"s3://{CONN}@{missing}/scores/")
    with pytest.raises(MrsDeployDestinationError, match=rf"bucket '{missing}'.*does not exist"):
        check_destination_folder(where)
    with pytest.raises(MrsDeployDestinationError, match=rf"bucket '{missing}'"):
        run(where, {0: ["a.csv"]})
    assert missing not in buckets(s3)


def test_an_existing_bucket_needs_no_folder_made(s3: Any, prefix: str, server: Any) -> None:
    """The destination's folder is implicit in its keys: no bucket is created, and the run
    lands as before."""
    before = buckets(s3)
    run(ObjectStoragePath(f"s3://{CONN}@{BUCKET}/{prefix}/"), {0: ["a.csv"]})
    assert buckets(s3) == before
    assert "CreateBucket" not in server.counts
    assert {"manifest.json", "files/0/a.csv"} <= set(keys(s3, prefix))


def test_an_object_at_the_destination_is_refused_before_anything_is_written(
    s3: Any, prefix: str
) -> None:
    s3.put_object(Bucket=BUCKET, Key=prefix, Body=b"mine")
    with pytest.raises(MrsDeployDestinationError, match="existing file, not a folder"):
        check_destination_folder(ObjectStoragePath(f"s3://{CONN}@{BUCKET}/{prefix}"))
    assert s3.get_object(Bucket=BUCKET, Key=prefix)["Body"].read() == b"mine"


def test_a_bucket_probe_the_store_did_not_answer_is_not_called_missing(
    s3: Any, server: CountingS3Server, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's ``exists`` answers False for any error: a throttled probe was reported as a
    bucket that does not exist, with the advice to create it."""
    once = "moto_buckets_once"  # a file system of its own, that does not retry
    for name, value in server_environment(server.endpoint, once, attempts=1).items():
        monkeypatch.setenv(name, value)
    where = ObjectStoragePath(f"s3://{once}@{BUCKET}/{prefix}/")
    with (
        server.failing(lambda name, key: "/" not in key.strip("/")),  # bucket-level requests
        pytest.raises(MrsDeployDestinationError) as info,
    ):
        check_destination_folder(where)
    message = str(info.value)
    assert f"bucket '{BUCKET}'" in message and "could not be checked" in message
    assert "does not exist" not in message and "retry" in message
    check_destination_folder(where)  # answered again: the bucket is there
