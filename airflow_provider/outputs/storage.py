"""The storage operations the writer needs, on a local disk and on any fsspec file system.

On a local disk nothing follows a symbolic link: folders are checked with ``lstat``,
temporary files are created with ``O_NOFOLLOW | O_EXCL``, a rename replaces a link rather than
its target, and listing never descends into a linked folder. Object stores have no links.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import Any, BinaryIO, Protocol, cast

from airflow_provider.exceptions import MrsDeployDestinationError
from airflow_provider.outputs.names import FILES_DIR
from airflow_provider.outputs.ownership import Listing


class FileOps(Protocol):
    """What the writer does to storage, on paths that are already joined to the base."""

    def list(self, base: str) -> Listing: ...
    def read(self, path: str) -> bytes | None: ...
    def makedirs(self, folder: str) -> None: ...
    def open_new(self, path: str) -> BinaryIO: ...
    def replace(self, source: str, target: str) -> None: ...
    def remove(self, path: str) -> None: ...
    def remove_empty_folder(self, folder: str) -> None: ...


_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


class LocalFileOps:
    """Files on a local disk: plain system calls that never follow a link."""

    def list(self, base: str) -> Listing:
        files: set[str] = set()
        links: set[str] = set()
        folders: set[str] = set()
        pending = [(base, "")]
        while pending:
            folder, relative = pending.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    path = f"{relative}/{entry.name}" if relative else entry.name
                    if entry.is_symlink():
                        links.add(path)
                    elif entry.is_dir(follow_symlinks=False):
                        folders.add(path)
                        # Only the files folder is walked: other folders hold other outputs.
                        if path == FILES_DIR or relative:
                            pending.append((entry.path, path))
                    else:
                        files.add(path)
        return Listing(frozenset(files), frozenset(links), frozenset(folders))

    def read(self, path: str) -> bytes | None:
        try:
            descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a link: never read through it
                return None
            raise
        with os.fdopen(descriptor, "rb") as handle:
            return handle.read()

    def makedirs(self, folder: str) -> None:
        """Create ``folder`` (its parent exists), or check that the one there is a folder."""
        try:
            os.mkdir(folder)
            return
        except FileExistsError:
            pass
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            raise MrsDeployDestinationError(
                f"{folder} is not a folder (a file or a symbolic link is there); Collect never "
                "writes through links. Remove it, or collect into another destination."
            )

    def open_new(self, path: str) -> BinaryIO:
        return os.fdopen(os.open(path, _OPEN_NEW, 0o666), "wb")

    def replace(self, source: str, target: str) -> None:
        os.replace(source, target)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def remove_empty_folder(self, folder: str) -> None:
        with contextlib.suppress(OSError):
            os.rmdir(folder)


class FsspecFileOps:
    """Files on any fsspec file system (object stores and the like)."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def list(self, base: str) -> Listing:
        files: set[str] = set()
        folders: set[str] = set()
        prefix = base.rstrip("/") + "/"
        try:
            top = self.fs.ls(base, detail=True, refresh=True)
        except FileNotFoundError:  # an object store has no folder until a key is under it
            top = []
        for info in top:
            name = str(info["name"]).rstrip("/")
            if not name.startswith(prefix):
                continue
            relative = name[len(prefix) :]
            (folders if info.get("type") == "directory" else files).add(relative)
        if FILES_DIR in folders:
            for full in self.fs.find(f"{prefix}{FILES_DIR}"):
                if not full.startswith(prefix):
                    continue
                relative = full[len(prefix) :]
                files.add(relative)
                parts = relative.split("/")
                folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        return Listing(frozenset(files), frozenset(), frozenset(folders))

    def read(self, path: str) -> bytes | None:
        try:
            return cast(bytes, self.fs.cat_file(path))
        except FileNotFoundError:
            return None

    def makedirs(self, folder: str) -> None:
        self.fs.makedirs(folder, exist_ok=True)

    def open_new(self, path: str) -> BinaryIO:
        return cast("BinaryIO", self.fs.open(path, "wb"))

    def replace(self, source: str, target: str) -> None:
        # ``mv`` replaces an existing object (copy and delete on an object store).
        self.fs.mv(source, target)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def remove_empty_folder(self, folder: str) -> None:
        """Object stores have no empty folders to drop."""
