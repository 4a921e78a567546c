"""Data-aware scheduling: runs whenever the scoring DAG lands a new mtcars partition.

The Collect task of ``mrsdeploy_score_mtcars`` updates the asset ``mrsdeploy_scores_mtcars`` and
attaches where the outputs landed (destination, manifest, counts) to the asset event; this DAG
reads that event, checks the manifest and reports the partition.
"""

# [START scores_report]
from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, ObjectStoragePath, task

log = logging.getLogger(__name__)

MTCARS_SCORES = Asset("mrsdeploy_scores_mtcars")

with DAG(
    dag_id="mrsdeploy_scores_report",
    description="Report each scored mtcars partition as soon as it lands",
    schedule=[MTCARS_SCORES],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["mrsdeploy", "example"],
) as dag:

    @task
    def report(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """Read the manifest of every partition that triggered this run."""
        reports = []
        events = triggering_asset_events[MTCARS_SCORES] if triggering_asset_events else []
        for event in events:
            manifest_path = ObjectStoragePath(event.extra["manifest"])
            manifest = json.loads(manifest_path.read_text())
            counts = manifest["counts"]
            log.info(
                "Partition %s: %d rows, %d failed, %d files",
                event.extra["destination"],
                counts["rows"],
                counts["failed_rows"],
                counts["files"],
            )
            reports.append({"destination": event.extra["destination"], **counts})
        return reports

    report()
# [END scores_report]
