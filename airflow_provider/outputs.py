"""Writing a batch's outputs to storage: a table, every row's files, and a manifest last.

Layout under the destination::

    outputs.parquet | outputs.csv | outputs.jsonl   one row per input index
    files/<index>/<name>                            every file each row produced
    manifest.json                                   written last: its presence means complete

A re-run for the same destination first removes the manifest (so a reader never takes a
half-replaced partition for a finished one), overwrites what it writes, deletes leftovers of the
previous run, and writes the manifest again at the end.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

import pandas as pd

from airflow_provider.api import ExecutionResult, MrsDeployError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

MANIFEST_NAME = "manifest.json"
FILES_DIR = "files"
TABLE_STEM = "outputs"
MAX_FILE_NAME_BYTES = 200
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\\/:*?\"<>|]")


class OutputFormat(str, Enum):
    """File format of the outputs table."""

    PARQUET = "parquet"
    CSV = "csv"
    JSONL = "jsonl"

    @classmethod
    def parse(cls, value: str | OutputFormat) -> OutputFormat:
        """Accept the enum or its name in any case."""
        try:
            return cls(str(getattr(value, "value", value)).lower())
        except ValueError:
            choices = ", ".join(f.value for f in cls)
            raise MrsDeployError(f"unknown output_format {value!r}; use one of {choices}") from None


@dataclass(frozen=True)
class WrittenFile:
    """One row file landed in storage, as recorded in the manifest."""

    index: int
    name: str
    path: str
    size: int
    sha256: str


class UnsafeFileNameError(MrsDeployError):
    """A server-supplied file name that cannot be made safe to write."""


def safe_file_name(name: str) -> str:
    """Make a server-supplied file name safe to place under ``files/<index>/``.

    Only the last path component is kept, control and reserved characters are replaced, and
    over-long names are shortened with a hash suffix, so nothing is ever written outside the
    destination whatever the server sends.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_CHARS.sub("_", base).strip()
    if base in ("", ".", ".."):
        raise UnsafeFileNameError(f"file name {name!r} has no usable name part")
    encoded = base.encode("utf-8")
    if len(encoded) > MAX_FILE_NAME_BYTES:
        digest = hashlib.sha256(encoded).hexdigest()[:16]
        stem = encoded[: MAX_FILE_NAME_BYTES - 17].decode("utf-8", "ignore")
        base = f"{stem}-{digest}"
    return base


def _cell(value: Any) -> Any:
    """Scalars stay as they are; vectors, matrices and data frames become JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, separators=(",", ":"))


def build_outputs_table(
    results: Sequence[ExecutionResult],
    output_names: Sequence[str],
    *,
    index_offset: int = 0,
    inputs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per input index: index, success, error, every output parameter (and inputs).

    Output parameters the service declares come first in declaration order; any extra ones a
    row returned are added after them, so nothing the server sent is lost.
    """
    names = list(output_names)
    for result in results:
        for key in result.output_parameters:
            if key not in names:
                names.append(key)
    columns: dict[str, Any] = {
        "index": pd.RangeIndex(index_offset, index_offset + len(results)),
        "success": [r.success for r in results],
        "error_message": [r.error_message or None for r in results],
    }
    for name in names:
        columns[name] = [_cell(r.output_parameters.get(name)) for r in results]
    table = pd.DataFrame(columns)
    if inputs is not None:
        if len(inputs) != len(results):
            raise MrsDeployError(
                f"cannot put {len(inputs)} input rows beside {len(results)} results"
            )
        renamed = inputs.reset_index(drop=True).add_prefix("input_")
        table = pd.concat([table, renamed], axis=1)
    return table


def _atomic_target(path: ObjectStoragePath) -> ObjectStoragePath:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def _move_into_place(temporary: ObjectStoragePath, final: ObjectStoragePath) -> None:
    if final.exists():
        final.unlink()
    temporary.rename(final)


class OutputWriter:
    """Writes one collect run into ``destination``; see the module docstring for the layout."""

    def __init__(self, destination: ObjectStoragePath) -> None:
        self.destination = destination
        self._taken: dict[int, set[str]] = {}
        self._lock = threading.Lock()

    @property
    def manifest_path(self) -> ObjectStoragePath:
        """Where the manifest goes."""
        return self.destination / MANIFEST_NAME

    def begin(self) -> None:
        """Create the destination and withdraw any previous manifest before rewriting."""
        self.destination.mkdir(parents=True, exist_ok=True)
        if self.manifest_path.exists():
            self.manifest_path.unlink()

    def claim_name(self, index: int, name: str) -> str:
        """A safe name for the row's file, unique within the row.

        Two server names can sanitise alike (``answer.csv`` and ``../answer.csv``); the later
        one gets a short hash of its original name so neither overwrites the other.
        """
        safe = safe_file_name(name)
        with self._lock:
            taken = self._taken.setdefault(index, set())
            if safe in taken:
                digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
                stem, dot, suffix = safe.rpartition(".")
                safe = f"{stem}-{digest}.{suffix}" if dot and stem else f"{safe}-{digest}"
            taken.add(safe)
        return safe

    def write_file(self, index: int, name: str, chunks: Iterable[bytes]) -> WrittenFile:
        """Stream one row file into place under a safe, unique name, hashing as it goes."""
        final = self.destination / FILES_DIR / str(index) / self.claim_name(index, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = _atomic_target(final)
        digest = hashlib.sha256()
        size = 0
        try:
            with temporary.open("wb") as handle:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    handle.write(chunk)
            _move_into_place(temporary, final)
        except BaseException:
            if temporary.exists():
                temporary.unlink()
            raise
        relative = f"{FILES_DIR}/{index}/{final.name}"
        return WrittenFile(index, final.name, relative, size, digest.hexdigest())

    def write_table(self, table: pd.DataFrame, output_format: OutputFormat) -> str:
        """Write the outputs table; return its path relative to the destination."""
        final = self.destination / f"{TABLE_STEM}.{output_format.value}"
        temporary = _atomic_target(final)
        with temporary.open("wb") as handle:
            if output_format is OutputFormat.PARQUET:
                table.to_parquet(handle, index=False)
            elif output_format is OutputFormat.CSV:
                handle.write(table.to_csv(index=False).encode("utf-8"))
            else:
                handle.write(
                    table.to_json(orient="records", lines=True, double_precision=15).encode("utf-8")
                )
        _move_into_place(temporary, final)
        return final.name

    def remove_leftovers(self, keep: Iterable[str]) -> list[str]:
        """Delete files under the destination that this run did not write (a previous run's)."""
        kept = set(keep) | {MANIFEST_NAME}
        removed: list[str] = []
        fs = self.destination.fs
        # One recursive listing of the whole destination, not a stat per path.
        for full in fs.find(self.destination.path):
            relative = self._relative(full)
            if relative not in kept:
                fs.rm_file(full)
                removed.append(relative)
        if removed:
            self._remove_empty_folders()
        return sorted(removed)

    def _relative(self, full: str) -> str:
        """A storage path relative to the destination (object stores have no ``relative_to``)."""
        base = self.destination.path.rstrip("/") + "/"
        return full[len(base) :] if full.startswith(base) else full

    def _remove_empty_folders(self) -> None:
        """Drop folders left empty by removed files (object stores have none to drop)."""
        folders = [p for p in self.destination.rglob("*") if p.is_dir()]
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()

    def finish(self, manifest: Mapping[str, Any]) -> str:
        """Write the manifest last, atomically; return its full path."""
        temporary = _atomic_target(self.manifest_path)
        temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        _move_into_place(temporary, self.manifest_path)
        return str(self.manifest_path)


def build_manifest(
    *,
    batch_ids: Sequence[str],
    service_name: str,
    service_version: str,
    table_path: str,
    output_format: OutputFormat,
    rows: int,
    failed_rows: int,
    files: Sequence[WrittenFile],
) -> dict[str, Any]:
    """The manifest: what was collected, from where, with sizes and checksums."""
    return {
        "batch_ids": list(batch_ids),
        "service": {"name": service_name, "version": service_version},
        "table": {"path": table_path, "format": output_format.value},
        "counts": {
            "rows": rows,
            "succeeded_rows": rows - failed_rows,
            "failed_rows": failed_rows,
            "files": len(files),
            "bytes": sum(f.size for f in files),
        },
        "files": [asdict(f) for f in sorted(files, key=lambda f: (f.index, f.name))],
        "created": datetime.now(timezone.utc).isoformat(),
    }
