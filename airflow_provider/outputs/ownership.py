"""Which paths under a destination a collect run may replace or delete: the ones it owns.

Collect owns exactly the paths an earlier collect at the same destination recorded:

- the previous run's manifest (``manifest.json``: its table, its files, and itself), and
- the ownership journal (``.mrsdeploy-collect.json``), written before a run changes anything.
  It holds every path the runs since the last manifest may have written, and the tokens of
  those runs, whose temporary files are named after them. A run killed at any point leaves the
  journal behind, so the next run still knows what it may replace and which half-written
  temporary files to clear; a run that finishes removes it once its manifest is written (or,
  when another run wrote here meanwhile, settles it: see :func:`settle_journal`).

Every other file or folder under the destination belongs to someone else and is never
deleted, moved or overwritten: a run that would have to write over one fails before writing
anything. Recorded paths are trusted only if they have the shape Collect writes (the table,
the manifest, ``files/<index>/<name>``), so an edited manifest cannot make Collect delete
anything else.

Everything here is pure: the writer lists the destination and reads the records, these
functions decide.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider.outputs.formats import OutputFormat
from airflow_provider.outputs.manifest import MANIFEST_NAME
from airflow_provider.outputs.names import FILES_DIR

JOURNAL_NAME = ".mrsdeploy-collect.json"
JOURNAL_FORMAT = "mrsdeploy-collect-ownership/1"
TABLE_NAMES = frozenset(f.table_name for f in OutputFormat)
#: Temporary files are ``.<final name>.<run token>-<process id>-<counter>.tmp``.
_TEMPORARY = re.compile(r"^\.(?P<final>.+)\.(?P<token>[0-9a-f]{12})-[0-9]+-[0-9]+\.tmp$")
_TOKEN = re.compile(r"^[0-9a-f]{12}$")
_GLOB_MAGIC = re.compile(r"[*?\[\]]")
#: Digits of the largest row index (a 64-bit integer).
_INDEX_DIGITS = 19
#: How many paths an error or log line names.
QUOTED_PATHS = 5
#: Why a path this run must write is refused when a file no collect recorded is there.
NOT_RECORDED = "not written by an earlier collect here"


@dataclass(frozen=True)
class Listing:
    """What is under the destination, as paths relative to it (``/``-separated).

    Only the places Collect writes are listed: the top level and the ``files`` folder.
    """

    files: frozenset[str] = frozenset()
    #: Symbolic links, and what is neither a file nor a folder (FIFOs, sockets, devices):
    #: Collect never reads or writes through them.
    links: frozenset[str] = frozenset()
    folders: frozenset[str] = frozenset()

    def exists(self, relative: str) -> bool:
        """Whether anything (file, link or folder) is at ``relative``."""
        return relative in self.files or relative in self.links or relative in self.folders


@dataclass(frozen=True)
class Ownership:
    """The paths earlier collect runs recorded, and the tokens of runs that did not finish."""

    owned: frozenset[str] = frozenset()
    pending: frozenset[str] = frozenset()
    #: Recorded paths refused because Collect never writes such a path.
    ignored: tuple[str, ...] = ()

    def merge(self, other: Ownership) -> Ownership:
        """Both records together."""
        return Ownership(
            self.owned | other.owned, self.pending | other.pending, self.ignored + other.ignored
        )


def temporary_name(final_name: str, token: str, pid: int, number: int) -> str:
    """The hidden name a file is written under before it is moved to ``final_name``.

    Without ``*``, ``?``, ``[`` or ``]``: fsspec's generic move (copy, then remove) reads its
    source as a glob pattern, and a pattern matching nothing is "not found".
    """
    return f".{_GLOB_MAGIC.sub('_', final_name)}.{token}-{pid}-{number}.tmp"


def is_row_file_path(relative: str) -> bool:
    """Whether ``relative`` is ``files/<index>/<name>`` with a plain index and one name."""
    parts = relative.split("/")
    return (
        len(parts) == 3
        and parts[0] == FILES_DIR
        and parts[1].isascii()
        and parts[1].isdigit()
        # No leading zero, and no longer than an index can be (int() of thousands of digits,
        # from an edited manifest, raises).
        and (parts[1] == "0" or parts[1][0] != "0")
        and len(parts[1]) <= _INDEX_DIGITS
        and parts[2] not in ("", ".", "..")
        and "\\" not in parts[2]
        and "\x00" not in parts[2]
    )


def is_layout_path(relative: str) -> bool:
    """Whether Collect ever writes ``relative``: the table, the manifest or a row file."""
    return relative == MANIFEST_NAME or relative in TABLE_NAMES or is_row_file_path(relative)


def _checked(paths: Iterable[Any]) -> tuple[frozenset[str], tuple[str, ...]]:
    kept: set[str] = set()
    ignored: list[str] = []
    for path in paths:
        if isinstance(path, str) and is_layout_path(path):
            kept.add(path)
        else:
            ignored.append(repr(path))
    return frozenset(kept), tuple(ignored)


def manifest_ownership(data: bytes) -> Ownership | None:
    """What a manifest records, or None when the bytes are not a manifest Collect wrote."""
    manifest = parse_manifest(data)
    if manifest is None:
        return None
    table, files = manifest.get("table"), manifest.get("files")
    if not isinstance(table, dict) or not isinstance(files, list):
        return None
    paths = [table.get("path"), *(f.get("path") if isinstance(f, dict) else f for f in files)]
    owned, ignored = _checked(paths)
    return Ownership(owned | {MANIFEST_NAME}, frozenset(), ignored)


def _journal(data: bytes) -> dict[str, Any] | None:
    """A journal's JSON, or None when the bytes are not a journal Collect wrote."""
    try:
        journal = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: not ours
        return None
    if not isinstance(journal, dict) or journal.get("format") != JOURNAL_FORMAT:
        return None
    return journal


def journal_ownership(data: bytes) -> Ownership | None:
    """What a journal records, or None when the bytes are not a journal Collect wrote."""
    journal = _journal(data)
    if journal is None:
        return None
    owned, ignored = _checked(_listed(journal.get("owned")))
    pending = _listed(journal.get("pending"))
    tokens = frozenset(t for t in pending if isinstance(t, str) and _TOKEN.match(t))
    return Ownership(owned, tokens, ignored)


def _listed(value: Any) -> list[Any]:
    """A journal's list, or none when an edit made it something else."""
    return value if isinstance(value, list) else []


def encode_journal(ownership: Ownership, previous_manifest: dict[str, Any] | None = None) -> bytes:
    """The journal's bytes (sorted, so equal records are equal files).

    :param previous_manifest: the manifest this run withdrew (or an earlier unfinished run
        did): what a repair of the destination starts from when the run dies half-way.
    """
    record: dict[str, Any] = {
        "format": JOURNAL_FORMAT,
        "owned": sorted(ownership.owned),
        "pending": sorted(ownership.pending),
    }
    if previous_manifest is not None:
        record["previous_manifest"] = previous_manifest
    # The standard encoder, though msgspec's is faster (2 against 3.5 ms for 10,000 paths): the
    # previous manifest is what the destination held, which may have been edited, and msgspec
    # refuses a string JSON allowed it to hold (an escaped lone surrogate, ``"\\udc80"``).
    return json.dumps(record, indent=1).encode("utf-8")


def parse_manifest(data: bytes) -> dict[str, Any] | None:
    """A manifest's JSON, or None when the bytes are not a manifest Collect wrote."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: not ours
        return None
    if not isinstance(manifest, dict) or "batch_ids" not in manifest:
        return None
    return manifest


def journal_previous_manifest(data: bytes) -> dict[str, Any] | None:
    """The manifest a journal carries (see :func:`encode_journal`), or None."""
    journal = _journal(data)
    previous = journal.get("previous_manifest") if journal is not None else None
    return previous if isinstance(previous, dict) and "batch_ids" in previous else None


def ancestors(relative: str) -> list[str]:
    """The folders above ``relative``, outermost first (``files``, ``files/3``)."""
    parts = relative.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def find_conflicts(planned: Iterable[str], listing: Listing, owned: frozenset[str]) -> list[str]:
    """Why each path this run must write cannot be written without touching someone else's.

    A planned path conflicts when something Collect does not own is there, or when a folder
    Collect needs (``files``, ``files/<index>``) is a file or a symbolic link.

    :returns: one line per problem, sorted (empty: nothing conflicts).
    """
    problems: set[str] = set()
    # Each folder once, walking up from the path until a folder already seen: thousands of
    # paths share ``files`` (a tenth of a 10,000-row collect's fixed cost, every folder of
    # every path checked).
    seen: set[str] = set()
    for path in planned:
        folder = path.rpartition("/")[0]
        while folder and folder not in seen:
            seen.add(folder)
            if folder in listing.links:
                problems.add(
                    f"{folder} (a symbolic link or special file where Collect needs a folder)"
                )
            elif folder in listing.files:
                problems.add(f"{folder} (a file where Collect needs a folder)")
            folder = folder.rpartition("/")[0]
        if path in listing.folders:
            problems.add(f"{path} (a folder)")
        elif (path in listing.files or path in listing.links) and path not in owned:
            problems.add(f"{path} ({NOT_RECORDED})")
    return sorted(problems)


def leftovers(owned: frozenset[str], written: Iterable[str], listing: Listing) -> list[str]:
    """Owned paths this run did not write and that still exist: the ones to delete."""
    keep = set(written)
    return sorted(
        path
        for path in owned
        if path not in keep and (path in listing.files or path in listing.links)
    )


def abandoned_folders(owned: frozenset[str], written: Iterable[str], listing: Listing) -> list[str]:
    """Folders above recorded paths this run did not write that are there now, deepest first.

    A run that died, or whose download failed before the first byte arrived, may have made a
    row folder (``files/3``) and left it empty: its file was never there to be deleted, so
    only this tells the next run to try the folder. Folders holding a path this run wrote are
    left out; the caller removes the others only if they are empty.
    """
    kept = set(written)
    found = {
        folder
        for path in owned
        if path not in kept
        for folder in ancestors(path)
        if folder in listing.folders
    }
    if not found:  # the usual case: no per-path work over a large run's written paths
        return []
    used: set[str] = set()
    for path in kept:
        folder = path.rpartition("/")[0]
        while folder and folder not in used:
            used.add(folder)
            folder = folder.rpartition("/")[0]
    return sorted(found - used, key=lambda folder: folder.count("/"), reverse=True)


@dataclass(frozen=True)
class Settlement:
    """What a finishing run does with the journal once its manifest is written."""

    #: The journal to write back (another run still needs it), or None to remove it.
    keep: Ownership | None
    #: Recorded paths outside this run's manifest: removed where they are found (only when
    #: ``keep`` is None: no other run is still writing).
    leftovers: frozenset[str]


def settle_journal(
    journal: Ownership,
    published: Ownership | None,
    *,
    token: str,
    taken_over: frozenset[str],
    ours: frozenset[str],
) -> Settlement:
    """How a run that overlapped another one ends, so that no path it recorded is forgotten.

    Two tries of one task can overlap (a stuck try still running while its retry starts).
    Each run's journal then holds the other's paths, and a run that simply removed the
    journal at its end would forget what the other run wrote afterwards: a path no manifest
    and no journal records, which every later run must refuse to overwrite.

    :param journal: what the journal records now (it changed since this run wrote it).
    :param published: what a manifest another run published since this run began records.
    :param token: this run's token.
    :param taken_over: tokens pending when this run began: runs it took the place of (it
        deleted their temporary files).
    :param ours: the paths this run's manifest records.
    """
    recorded = journal.owned | (published.owned if published is not None else frozenset())
    others = journal.pending - {token} - taken_over
    if others:
        # A run that began after this one is still writing: it needs the journal, with
        # these paths in it (this manifest will not be the last).
        return Settlement(Ownership(recorded | ours, others), frozenset())
    return Settlement(None, recorded - ours)


def stale_temporaries(listing: Listing, ownership: Ownership, current: str) -> list[str]:
    """Temporary files left by runs the journal records as unfinished (not the current run).

    A temporary of the journal itself carries no recorded token (it was being written when its
    run died), so any temporary of the journal's reserved name is stale.
    """
    stale = []
    for path in listing.files | listing.links:
        folder, _, name = path.rpartition("/")
        match = _TEMPORARY.match(name)
        if match is None or match["token"] == current:
            continue
        if (not folder and match["final"] == JOURNAL_NAME) or match["token"] in ownership.pending:
            stale.append(path)
    return sorted(stale)


def quote_paths(paths: Sequence[str]) -> str:
    """The first few paths, and how many more."""
    shown = ", ".join(paths[:QUOTED_PATHS])
    more = len(paths) - QUOTED_PATHS
    return f"{shown} (and {more} more)" if more > 0 else shown
