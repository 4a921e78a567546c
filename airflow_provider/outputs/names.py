"""Safe, unique names for the files a server says a row produced."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from airflow_provider.exceptions import UnsafeFileNameError

FILES_DIR = "files"
MAX_FILE_NAME_BYTES = 200
#: Control characters (C0, DEL, C1: a terminal's escapes among them), line and paragraph
#: separators, path separators and the characters Windows reserves.
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\/:*?\"<>|]")
#: Names that :func:`safe_file_name` returns unchanged: short, ASCII, no separator, reserved
#: or control character, no space to strip (most names a service writes: ``answer.csv``).
_PLAIN_NAME = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_FILE_NAME_BYTES}}}")


def safe_file_name(name: str) -> str:
    """Make a server-supplied file name safe to place under ``files/<index>/``.

    Only the last path component is kept, control and reserved characters are replaced, and
    over-long names are shortened with a hash suffix, so nothing is ever written outside the
    destination whatever the server sends.
    """
    if _PLAIN_NAME.fullmatch(name) and name not in (".", ".."):
        return name
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Lone surrogates (a server's undecodable bytes) cannot be stored as a file name; UTF-8
    # replaces them with "?", itself reserved: replaced with the rest just after.
    base = base.encode("utf-8", "replace").decode("utf-8")
    base = _UNSAFE_CHARS.sub("_", base).strip()
    if base in ("", ".", ".."):
        raise UnsafeFileNameError(f"file name {name!r} has no usable name part")
    encoded = base.encode("utf-8")
    if len(encoded) > MAX_FILE_NAME_BYTES:
        digest = hashlib.sha256(encoded).hexdigest()[:16]
        stem = encoded[: MAX_FILE_NAME_BYTES - 17].decode("utf-8", "ignore")
        base = f"{stem}-{digest}"
    return base


def _same_file_key(name: str) -> str:
    """Names that one file system may take for the same file (case, Unicode normal form)."""
    return unicodedata.normalize("NFC", name).casefold()


class RowFileNames:
    """Gives each of one row's files a safe name no other file of the row has.

    Two server names can sanitise alike (``answer.csv`` and ``../answer.csv``), or differ only
    in case, which a case-insensitive file system stores as one file. The later name gets a
    short hash of its original name, and the hash is drawn again until the result is free, so
    a crafted name that equals another's hashed form (``answer-<hash>.csv``) cannot collide
    either. Claims must come in the same order on every run for a re-run to land the same
    names: the order the server lists them.
    """

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, name: str) -> str:
        """A safe name for ``name``, distinct from every name claimed before."""
        safe = safe_file_name(name)
        candidate = safe
        attempt = 0
        while _same_file_key(candidate) in self._taken:
            seed = f"{attempt}:{name}" if attempt else name
            digest = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            stem, dot, suffix = safe.rpartition(".")
            if not (dot and stem) or len(suffix.encode()) > MAX_FILE_NAME_BYTES // 2:
                stem, dot, suffix = safe, "", ""
            # Within the longest name allowed: the stem gives up what the hash takes.
            room = MAX_FILE_NAME_BYTES - len(f"-{digest}{dot}{suffix}".encode())
            stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore") or "_"
            candidate = f"{stem}-{digest}{dot}{suffix}"
            attempt += 1
        self._taken.add(_same_file_key(candidate))
        return candidate


@dataclass(frozen=True)
class PlannedFile:
    """A row file this run will write: the server's name and where it lands."""

    index: int
    name: str
    safe: str

    @property
    def path(self) -> str:
        """The file's path relative to the destination."""
        return f"{FILES_DIR}/{self.index}/{self.safe}"


def plan_row_files(index: int, names: Iterable[str]) -> list[PlannedFile]:
    """Where each of a row's files lands, in the server's order (see :class:`RowFileNames`)."""
    if isinstance(names, (list, tuple)) and len(names) == 1:
        # The first claim of a row never collides (most rows have one file).
        return [PlannedFile(index, names[0], safe_file_name(names[0]))]
    claims = RowFileNames()
    return [PlannedFile(index, name, claims.claim(name)) for name in names]
