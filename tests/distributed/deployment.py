"""The running distributed deployment as the tests see it: its parts and the clients on it."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from tests.distributed.cluster import DistributedCluster
from tests.distributed.services import PostgresServer
from tests.support.server import ReferenceServer

if TYPE_CHECKING:
    from airflow_provider.hooks import MrsDeployHook

BUCKET = "lake"
S3_CONN_ID = "moto_s3"
SERVICE = ("mtService", "v1.0.0")


@dataclass
class Deployment:
    """The running deployment and the clients the tests use on it."""

    cluster: DistributedCluster
    postgres: PostgresServer
    server: ReferenceServer
    s3: Any
    hook: MrsDeployHook

    def batches(self) -> list[str]:
        """Ids of every ``mtService`` batch on the reference server (its batch list)."""
        return [str(batch_id) for batch_id in self.hook.list_batches(*SERVICE)]

    @staticmethod
    def url(key: str) -> str:
        """The ``ObjectStoragePath`` URL of a key in the bucket, through the S3 connection."""
        return f"s3://{S3_CONN_ID}@{BUCKET}/{key}"

    def put_csv(self, key: str, frame: pd.DataFrame) -> str:
        """Upload a table as CSV; return its URL."""
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=frame.to_csv(index=False).encode())
        return self.url(key)

    def sizes(self, prefix: str) -> dict[str, int]:
        """Every key under ``prefix`` with its size."""
        found: dict[str, int] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            found.update({item["Key"]: int(item["Size"]) for item in page.get("Contents", [])})
        return found

    def read_bytes(self, key: str) -> bytes:
        """An object's content."""
        return bytes(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def read_parquet(self, key: str) -> pd.DataFrame:
        """A Parquet object as a table."""
        return pd.read_parquet(io.BytesIO(self.read_bytes(key)))

    def read_json(self, key: str) -> Any:
        """A JSON object."""
        return json.loads(self.read_bytes(key))
