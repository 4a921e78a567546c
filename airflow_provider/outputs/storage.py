"""The storage operations the writer needs, on a local disk and on any fsspec file system.

On a local disk nothing follows a symbolic link: folders are checked with ``lstat``,
temporary files are created with ``O_NOFOLLOW | O_EXCL``, a rename replaces a link rather than
its target, and listing never descends into a linked folder. Object stores have no links.

How a file is written so that it is either absent or whole depends on the storage (see
:func:`file_ops_for`):

- a local disk, and any file system that writes a file in place as it goes (SFTP, HDFS...):
  under a temporary name beside the final one, then renamed into place;
- an object store whose uploads are committed at the end (S3, GCS): straight to the final key.
  A single PUT is atomic (readers see the old object or the new one, never half of it), and a
  larger file is a multipart (S3) or resumable (GCS) upload that stays invisible until it is
  completed; an upload that fails is aborted. A temporary object moved into place would cost
  a copy of every byte and a delete more per file, for no safety gained.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from collections.abc import Callable
from typing import Any, BinaryIO, Generic, Protocol, TypeVar, cast

from airflow_provider.exceptions import MrsDeployDestinationError
from airflow_provider.outputs.names import FILES_DIR
from airflow_provider.outputs.ownership import Listing

#: Object stores whose file objects upload in parts that stay invisible until the file is
#: closed (S3 multipart upload, GCS resumable upload), and can be aborted: written directly.
COMMIT_ON_CLOSE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs"})
#: Stores whose file objects show what is written at once, but that write bytes given whole
#: atomically (fsspec's memory file system): buffered, then written in one call.
WHOLE_WRITE_PROTOCOLS = frozenset({"memory"})
#: Part size of an upload to an object store: a file up to this size is one PUT; a larger one
#: is a multipart upload of parts this large. It bounds the memory each file being written
#: holds (S3 allows 10,000 parts: files up to 80 GB).
UPLOAD_PART_BYTES = 8 << 20


class Sink(Protocol):
    """What a row file's bytes are written to: nothing else is asked of it."""

    def write(self, data: bytes, /) -> int: ...
    def close(self) -> None: ...


class RowFileUpload(Protocol):
    """A row file being written: bytes go to :attr:`handle`; :meth:`commit` puts the whole
    file under its final name, :meth:`abort` leaves nothing there (the previous file, if any,
    stays). A commit that fails aborts; aborting twice is harmless."""

    @property
    def handle(self) -> Sink: ...

    def commit(self) -> None: ...
    def abort(self) -> None: ...


class Upload(RowFileUpload, Protocol):
    """A :class:`RowFileUpload` whose handle is a whole file object (the table is written to
    it by pandas and pyarrow)."""

    @property
    def handle(self) -> BinaryIO: ...


class FileOps(Protocol):
    """What the writer does to storage, on paths that are already joined to the base."""

    #: Whether files are written under temporary names (which a dead run may leave behind).
    uses_temporaries: bool

    def list(self, base: str) -> Listing: ...
    def read(self, path: str) -> bytes | None: ...
    def makedirs(self, folder: str) -> None: ...
    def start(self, final: str) -> Upload: ...
    def start_row_file(self, final: str) -> RowFileUpload: ...
    def remove(self, path: str) -> None: ...
    def remove_empty_folder(self, folder: str) -> None: ...


#: Names a temporary file beside a final path (the writer's run token is in it).
TemporaryNamer = Callable[[str], str]

_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


_H = TypeVar("_H", bound=Sink)


class RenamedUpload(Generic[_H]):
    """Written under a temporary name (opened as ``handle``), renamed to the final one when
    complete."""

    def __init__(self, ops: _RenamingOps, temporary: str, final: str, handle: _H) -> None:
        self._ops = ops
        self.temporary = temporary
        self.final = final
        self.handle = handle

    def commit(self) -> None:
        try:
            self.handle.close()
            self._ops.replace(self.temporary, self.final)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self.handle.close()
        self._ops.remove(self.temporary)


class _RenamingOps:
    """Shared by the stores that write a temporary file and rename it."""

    uses_temporaries = True

    def __init__(self, temporary_for: TemporaryNamer) -> None:
        self._temporary_for = temporary_for

    def start(self, final: str) -> Upload:
        return self._renamed(final, self.open_new)

    def start_row_file(self, final: str) -> RowFileUpload:
        return self.start(final)

    def _renamed(self, final: str, open_new: Callable[[str], _H]) -> RenamedUpload[_H]:
        """``final``'s upload, opened with ``open_new`` under a temporary name."""
        temporary = self._temporary_for(final)
        return RenamedUpload(self, temporary, final, open_new(temporary))

    def open_new(self, path: str) -> BinaryIO:
        raise NotImplementedError

    def replace(self, source: str, target: str) -> None:
        raise NotImplementedError

    def remove(self, path: str) -> None:
        raise NotImplementedError


class LocalFileOps(_RenamingOps):
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
                    if entry.is_dir(follow_symlinks=False):
                        folders.add(path)
                        # Only the files folder is walked: other folders hold other outputs.
                        if path == FILES_DIR or relative:
                            pending.append((entry.path, path))
                    elif entry.is_file(follow_symlinks=False):
                        files.add(path)
                    else:  # a link, or a FIFO, socket or device: never read or written
                        links.add(path)
        return Listing(frozenset(files), frozenset(links), frozenset(folders))

    def read(self, path: str) -> bytes | None:
        # Not blocking: a FIFO put there since the listing would wait for a writer for ever.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            descriptor = os.open(path, flags)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a link: never read through it
                return None
            raise
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise MrsDeployDestinationError(
                    f"{path} is not a regular file (a FIFO, socket or device is there); "
                    "remove it, or collect into another destination."
                )
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
        return os.fdopen(_create_new(path), "wb")

    def start_row_file(self, final: str) -> RowFileUpload:
        """A row file, written with plain system calls (:class:`Descriptor`)."""
        return self._renamed(final, _new_descriptor)

    def replace(self, source: str, target: str) -> None:
        os.replace(source, target)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def remove_empty_folder(self, folder: str) -> None:
        with contextlib.suppress(OSError):
            os.rmdir(folder)


class Descriptor:
    """A new local file written with plain system calls.

    ``open`` would add a buffer object and two system calls (``fstat``, and the terminal check
    that decides the buffering): about 4 µs of the 25 µs a 10 KB row file costs to land,
    while a row file's chunks come already sized and are written once each.
    """

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes, /) -> int:
        """Write all of ``data`` (a write that stops part-way, as on a full disk, goes on
        with the rest, so the error it then meets is raised rather than bytes lost)."""
        written = os.write(self._fd, data)
        if written < len(data):
            rest = memoryview(data)[written:]
            while rest:
                rest = rest[os.write(self._fd, rest) :]
        return len(data)

    def close(self) -> None:
        """Close the file; again is harmless."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def _create_new(path: str) -> int:
    """A new file at ``path`` (never an existing one, never through a link), open to write."""
    return os.open(path, _OPEN_NEW, 0o666)


def _new_descriptor(path: str) -> Descriptor:
    return Descriptor(_create_new(path))


class FsspecFileOps(_RenamingOps):
    """Files on any fsspec file system: written under a temporary name, then moved.

    Used where a file being written may be seen before it is whole (SFTP, HDFS, a mounted
    share...) and for Azure Blob Storage (see :func:`file_ops_for`).
    """

    def __init__(self, fs: Any, temporary_for: TemporaryNamer) -> None:
        super().__init__(temporary_for)
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
        """Drop ``folder`` if it is empty (SFTP, HDFS and shares have real folders); one that
        still holds anything, or a store that cannot, keeps it."""
        with contextlib.suppress(OSError, NotImplementedError):
            if not self.fs.ls(folder, detail=False):
                self.fs.rmdir(folder)


class DeferredUpload:
    """Written straight to the final key through a file object whose upload becomes visible
    only when it is closed (one PUT for a small file; a multipart or resumable upload
    completed at the end for a larger one).

    An aborted upload is discarded (a multipart upload aborted, a resumable one cancelled)
    and marked closed without being committed: fsspec's file objects commit on ``close``,
    which a ``with`` block or the garbage collector would otherwise call on a half-written
    file.
    """

    def __init__(self, handle: Any) -> None:
        self.handle = cast("BinaryIO", handle)
        self._file = handle

    def commit(self) -> None:
        try:
            self._file.close()
        except BaseException:
            # The PUT or the completion failed: drop the parts uploaded so far.
            self._drop()
            raise

    def abort(self) -> None:
        self._drop()

    def _drop(self) -> None:
        try:
            discard = getattr(self._file, "discard", None)
            if discard is not None:
                discard()
        finally:
            self._file.closed = True


class WholeUpload:
    """Held in memory, then written in one call: for stores whose file objects show bytes as
    they are written but write bytes given whole atomically."""

    def __init__(self, fs: Any, final: str) -> None:
        self._fs = fs
        self._final = final
        self.handle: BinaryIO = io.BytesIO()

    def commit(self) -> None:
        data = cast(io.BytesIO, self.handle).getvalue()
        self.handle.close()
        self._fs.pipe_file(self._final, data)

    def abort(self) -> None:
        self.handle.close()


class ObjectStoreFileOps(FsspecFileOps):
    """An object store: each file written to its final key, no temporary object.

    Object stores have no folders, so none is created for a row's files (which on S3 would
    cost a request per row to check that the bucket exists).
    """

    uses_temporaries = False

    def __init__(self, fs: Any, temporary_for: TemporaryNamer, *, whole: bool = False) -> None:
        super().__init__(fs, temporary_for)
        self._whole = whole

    def makedirs(self, folder: str) -> None:
        """Nothing to create: a key implies its folders."""

    def remove_empty_folder(self, folder: str) -> None:
        """Object stores have no empty folders to drop."""

    def start(self, final: str) -> Upload:
        if self._whole:
            return WholeUpload(self.fs, final)
        return DeferredUpload(self.fs.open(final, "wb", block_size=UPLOAD_PART_BYTES))


def protocols(fs: Any) -> frozenset[str]:
    """The protocol names of an fsspec file system (``("s3", "s3a")``, ``"memory"``...)."""
    protocol = getattr(fs, "protocol", ())
    return frozenset([protocol] if isinstance(protocol, str) else protocol)


def file_ops_for(fs: Any, temporary_for: TemporaryNamer) -> FileOps:
    """The operations for an fsspec file system other than the local disk.

    S3 and GCS are written directly (see the module docstring). Azure Blob Storage keeps the
    temporary object: some versions of its fsspec library number the staged blocks of every
    upload from zero, so two uploads to one key at the same time could interleave their
    blocks. Every other file system keeps the temporary name and the move.
    """
    names = protocols(fs)
    if names & COMMIT_ON_CLOSE_PROTOCOLS:
        return ObjectStoreFileOps(fs, temporary_for)
    if names & WHOLE_WRITE_PROTOCOLS:
        return ObjectStoreFileOps(fs, temporary_for, whole=True)
    return FsspecFileOps(fs, temporary_for)
