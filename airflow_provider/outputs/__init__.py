"""Landing a collect run in storage: the table, every row's files, and a manifest last.

Layout under the destination::

    outputs.parquet | outputs.csv | outputs.jsonl   one row per input index
    files/<index>/<name>                            every file each row produced
    manifest.json                                   written last: its presence means complete

Modules: :mod:`.table` (columns and their types), :mod:`.formats` (exact rendering),
:mod:`.names` (safe, unique file names), :mod:`.ownership` (what a run may replace),
:mod:`.storage` (local and fsspec operations), :mod:`.writer` (one run, step by step),
:mod:`.manifest`, :mod:`.progress`.
"""

from __future__ import annotations

from airflow_provider.outputs.formats import OutputFormat, RenderedTable
from airflow_provider.outputs.manifest import MANIFEST_NAME, WrittenFile, build_manifest
from airflow_provider.outputs.names import (
    FILES_DIR,
    MAX_FILE_NAME_BYTES,
    PlannedFile,
    RowFileNames,
    UnsafeFileNameError,
    plan_row_files,
    safe_file_name,
)
from airflow_provider.outputs.ownership import JOURNAL_NAME
from airflow_provider.outputs.progress import ProgressLog
from airflow_provider.outputs.storage import MrsDeployDestinationError
from airflow_provider.outputs.table import MrsDeployOutputsError, OutputsTable, column_name
from airflow_provider.outputs.writer import OutputWriter, check_destination

__all__ = [
    "FILES_DIR",
    "JOURNAL_NAME",
    "MANIFEST_NAME",
    "MAX_FILE_NAME_BYTES",
    "MrsDeployDestinationError",
    "MrsDeployOutputsError",
    "OutputFormat",
    "OutputWriter",
    "OutputsTable",
    "PlannedFile",
    "ProgressLog",
    "RenderedTable",
    "RowFileNames",
    "UnsafeFileNameError",
    "WrittenFile",
    "build_manifest",
    "check_destination",
    "column_name",
    "plan_row_files",
    "safe_file_name",
]
