"""Reading back what a collect run wrote: its manifest, as the start of a repair.

A repair of failed rows starts from the destination's manifest: it names the service, the
batches and which rows each produced, the failed rows, the files and the repairs so far. When
a run died after withdrawing the manifest, the journal still carries it (see
:func:`~airflow_provider.outputs.ownership.encode_journal`), so a retried repair can go on.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fsspec.implementations.local import LocalFileSystem

from airflow_provider.batch_set import KIND, VERSION, BatchSet
from airflow_provider.exceptions import MrsDeployBatchSetError, MrsDeployOutputsError
from airflow_provider.outputs.formats import OutputFormat
from airflow_provider.outputs.manifest import MANIFEST_NAME, WrittenFile
from airflow_provider.outputs.ownership import (
    JOURNAL_NAME,
    is_layout_path,
    journal_previous_manifest,
    parse_manifest,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: Manifest key of the repairs made at a destination, in order.
REPAIRS_KEY = "repairs"


@dataclass(frozen=True)
class CollectedRun:
    """A complete collect run, as its manifest records it.

    :param batch_set: the batches that produced the rows: those holding the input in order,
        then the repairs' batches (with row maps).
    :param output_format: the table's format.
    :param table_path: the table, relative to the destination.
    :param rows: rows in the table.
    :param failed_rows: the failed rows' indexes, or None when the manifest predates the list.
    :param files: the row files written.
    :param repairs: the repairs made so far (see docs/outputs.md), oldest first.
    :param interrupted: the manifest came from the journal of a run that did not finish, so
        files under the destination may differ from what it records.
    """

    batch_set: BatchSet
    output_format: OutputFormat
    table_path: str
    rows: int
    failed_rows: tuple[int, ...] | None
    files: tuple[WrittenFile, ...]
    repairs: tuple[dict[str, Any], ...]
    interrupted: bool = False


def read_collected_run(destination: ObjectStoragePath) -> CollectedRun | None:
    """The last complete run under ``destination``, or None when there is none.

    :raises MrsDeployOutputsError: the manifest is there but cannot be read as one, or (on a
        local disk) the manifest or the journal is a symbolic link.
    """
    manifest_file = destination / MANIFEST_NAME
    refuse_link(manifest_file)
    if manifest_file.is_file():
        manifest = parse_manifest(manifest_file.read_bytes())
        if manifest is None:
            raise MrsDeployOutputsError(
                f"{manifest_file} is not a manifest Collect wrote; collect into this "
                "destination again before repairing it"
            )
        return collected_run(manifest, str(manifest_file))
    journal = destination / JOURNAL_NAME
    refuse_link(journal)
    if journal.is_file():
        previous = journal_previous_manifest(journal.read_bytes())
        if previous is not None:
            run = collected_run(previous, f"the manifest carried by {journal}")
            return dataclasses.replace(run, interrupted=True)
    return None


def refuse_link(path: ObjectStoragePath) -> None:
    """Refuse a symbolic link where Collect writes a file, on a local disk.

    Collect never writes through a link (it would replace the link itself), so a link at
    ``manifest.json`` or at the table is not its work: read through, it would make a repair
    re-score another folder's rows and merge them here. Checked without following the link,
    before anything is read or sent. (Object stores have no links.)

    :raises MrsDeployOutputsError: ``path`` is a link.
    """
    if isinstance(path.fs, LocalFileSystem) and os.path.islink(path.path):
        raise MrsDeployOutputsError(
            f"{path} is a symbolic link, which Collect never writes: a repair does not read "
            "through one. Remove the link, or collect into this destination again"
        )


def collected_run(manifest: Mapping[str, Any], where: str) -> CollectedRun:
    """Read a manifest's JSON (from ``where``, named by errors).

    :raises MrsDeployOutputsError: a required entry is missing or malformed.
    """
    try:
        service = manifest["service"]
        table = manifest["table"]
        counts = manifest["counts"]
        entries = manifest.get("batches") or [
            {"batch_id": batch_id} for batch_id in manifest["batch_ids"]
        ]
        batch_set = BatchSet.from_json(
            {
                "kind": KIND,
                "version": VERSION,
                "service_name": service["name"],
                "service_version": service["version"],
                "batches": list(entries),
                "records_sha256": manifest.get("records_sha256"),
            }
        )
        output_format = OutputFormat.parse(table["format"])
        table_path = str(table["path"])
        rows = _count(counts["rows"])
        failed = manifest.get("failed_row_indexes")
        failed_rows = None if failed is None else tuple(_row(i, rows) for i in failed)
        files = tuple(_written(entry) for entry in manifest["files"])
        repairs = tuple(dict(r) for r in manifest.get(REPAIRS_KEY, ()) if isinstance(r, Mapping))
    except (KeyError, TypeError, ValueError, MrsDeployBatchSetError) as exc:
        raise MrsDeployOutputsError(
            f"{where} cannot be read as a collect manifest ({type(exc).__name__}: {exc}); "
            "collect into this destination again before repairing it"
        ) from None
    if not is_layout_path(table_path):
        raise MrsDeployOutputsError(f"{where} names table {table_path!r}, not a Collect table")
    return CollectedRun(batch_set, output_format, table_path, rows, failed_rows, files, repairs)


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def _row(value: Any, rows: int) -> int:
    if _count(value) >= rows:
        raise ValueError(f"failed row {value!r} is beyond the table's {rows} rows")
    return int(value)


def _written(entry: Any) -> WrittenFile:
    if not isinstance(entry, Mapping):
        raise TypeError(f"file entry {entry!r} is not an object")
    path = str(entry["path"])
    if not is_layout_path(path):
        raise ValueError(f"file entry path {path!r} is not a Collect row file")
    return WrittenFile(
        index=_count(entry["index"]),
        name=str(entry["name"]),
        path=path,
        size=_count(entry["size"]),
        sha256=str(entry["sha256"]),
        server_name=None if entry.get("server_name") is None else str(entry["server_name"]),
    )


def failed_rows_of_table(destination: ObjectStoragePath, run: CollectedRun) -> tuple[int, ...]:
    """The failed rows, from the manifest, else from the table's ``success`` column (a
    manifest written before failed rows were listed)."""
    if run.failed_rows is not None:
        return run.failed_rows
    table = read_table(destination, run)
    failed = table.loc[~table["success"].astype(bool), "index"]
    return tuple(int(i) for i in failed)


def read_table(destination: ObjectStoragePath, run: CollectedRun) -> Any:
    """The outputs table as a DataFrame (pandas: imported here, at run time only).

    :raises MrsDeployOutputsError: the table is missing or does not match the manifest.
    """
    from airflow_provider.records.read import load_records

    path = destination / run.table_path
    refuse_link(path)
    if not path.is_file():
        raise MrsDeployOutputsError(
            f"the manifest names the table {path}, which is not there; collect into this "
            "destination again before repairing it"
        )
    frame = load_records(str(path), run.output_format.value)
    index = frame["index"].tolist() if "index" in frame.columns else None
    if index != list(range(run.rows)):
        raise MrsDeployOutputsError(
            f"the table {path} does not hold rows 0 to {run.rows - 1} in order as its manifest "
            "says; collect into this destination again before repairing it"
        )
    return frame
