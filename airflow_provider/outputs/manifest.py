"""The manifest: what a collect run wrote, from where, with sizes and checksums.

It is written last, so its presence marks a complete run; its ``table`` and ``files`` entries
are also the record of which paths a later collect at the same destination may replace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import msgspec

from airflow_provider.outputs.formats import OutputFormat

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class WrittenFile:
    """One row file landed in storage, as recorded in the manifest."""

    index: int
    name: str
    path: str
    size: int
    sha256: str
    #: The name the server gave the file, when it is not ``name``: made safe (a path
    #: component, a reserved character) or renamed apart from another file of the row (names
    #: differing in case or Unicode form). Which file got which name is then still known.
    server_name: str | None = None


#: The manifest's order of files: by row, then name (a key in C: no tuple built in Python per
#: file of a large collect).
_ROW_AND_NAME = attrgetter("index", "name")


def build_manifest(
    *,
    batch_ids: Sequence[str],
    batches: Sequence[Mapping[str, Any]] = (),
    service_name: str,
    service_version: str,
    table_path: str,
    output_format: OutputFormat,
    rows: int,
    failed_rows: int,
    files: Sequence[WrittenFile],
    renamed_outputs: Mapping[str, str] | None = None,
    failed_row_indexes: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The manifest of one collect run.

    :param batch_ids: the batches that hold the input's rows, in input order.
    :param batches: which batch produced which rows of the table: the batches holding the
        input's rows (``batch_id``, ``first_row``, ``row_count``) in table order, then any
        batch that re-scored chosen rows (with ``rows``, its row map); a row was produced by
        the last entry that holds it.
    :param failed_row_indexes: the index of every failed row (what a repair re-submits).
    """
    manifest: dict[str, Any] = {
        "batch_ids": list(batch_ids),
        "batches": [dict(batch) for batch in batches],
        "service": {"name": service_name, "version": service_version},
        "table": {"path": table_path, "format": output_format.value},
        "counts": {
            "rows": rows,
            "succeeded_rows": rows - failed_rows,
            "failed_rows": failed_rows,
            "files": len(files),
            "bytes": sum(f.size for f in files),
        },
        "files": [_file_entry(f) for f in sorted(files, key=_ROW_AND_NAME)],
        "created": datetime.now(UTC).isoformat(),
    }
    if failed_row_indexes is not None:
        manifest["failed_row_indexes"] = list(failed_row_indexes)
    if renamed_outputs:
        manifest["renamed_outputs"] = dict(renamed_outputs)
    return manifest


def _file_entry(written: WrittenFile) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "index": written.index,
        "name": written.name,
        "path": written.path,
        "size": written.size,
        "sha256": written.sha256,
    }
    if written.server_name is not None and written.server_name != written.name:
        entry["server_name"] = written.server_name
    return entry


def encode_manifest(manifest: Mapping[str, Any]) -> bytes:
    """The manifest's JSON text: keys sorted, indented by two.

    msgspec first: the standard encoder's indented output is pure Python, slow for a manifest
    of many thousands of files. A manifest carries entries copied from the one the destination
    held before (its repairs), which may have been edited to hold a string JSON allows and
    UTF-8 cannot encode: a lone surrogate, escaped as ``"\\udc80"``. msgspec refuses such a
    string; the standard encoder writes it escaped as it came, so the run still finishes.
    """
    try:
        return msgspec.json.format(msgspec.json.encode(manifest, order="sorted"), indent=2)
    except UnicodeEncodeError:
        return json.dumps(manifest, sort_keys=True, indent=2).encode("ascii")
