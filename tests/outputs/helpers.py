"""Helpers shared by the writer's tests on a local disk and on object stores."""

from __future__ import annotations

from typing import Any

from airflow_provider.outputs import RenderedTable, WrittenFile, build_manifest


def manifest_of_run(table: RenderedTable, landed: list[WrittenFile]) -> dict[str, Any]:
    """The manifest of a test run that landed ``landed`` beside ``table``."""
    return build_manifest(
        batch_ids=["b"],
        service_name="s",
        service_version="v",
        table_path=table.name,
        output_format=table.output_format,
        rows=table.rows,
        failed_rows=0,
        files=landed,
    )
