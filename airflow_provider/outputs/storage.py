"""The storage operations the writer needs, on a local disk and on any fsspec file system.

On a local disk nothing follows a symbolic link, even one put there while a run is writing:
the destination is opened once, and every folder below it (``files``, ``files/<index>``) is
opened from its parent's descriptor with ``O_NOFOLLOW | O_DIRECTORY``, so a link there is
refused by the same system call that reaches the folder. Files are then created (with
``O_NOFOLLOW | O_EXCL``), renamed, deleted and listed relative to those descriptors, never by
a path that the kernel would walk again (and follow a link swapped in since a check). A rename
replaces a link rather than its target, and listing never descends into a linked folder.
Object stores have no links.

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
import weakref
from collections import OrderedDict
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
#: Object stores whose paths start with a bucket (or container), which a run must find in place:
#: their file systems create a missing one when asked to make a folder in it.
BUCKET_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"})
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
    def close(self) -> None:
        """Release what the operations hold (a local disk's open folders); again is harmless."""


#: Names the temporary file a final file name is written under, in the same folder (the
#: writer's run token is in it).
TemporaryNamer = Callable[[str], str]

_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
#: How a folder below the destination is opened: only if it is a folder, never through a link.
_OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
#: What opening a folder with :data:`_OPEN_FOLDER` fails with when a link or a file is there.
_NOT_A_FOLDER = frozenset({errno.ELOOP, errno.ENOTDIR})
#: Row folders kept open on a local disk, the most recently used: rows are landed mostly in
#: order, a few at a time (Collect downloads 8 at once by default), so a row's folder is
#: opened once, however many files it gets, while the descriptors a run holds stay bounded.
KEPT_ROW_FOLDERS = 16


_H = TypeVar("_H", bound=Sink)


class RenamedUpload:
    """Written under a temporary name (opened as ``handle``), renamed to the final one when
    complete."""

    def __init__(self, ops: FsspecFileOps, temporary: str, final: str, handle: BinaryIO) -> None:
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


class _Folder:
    """A folder kept open (the destination, or one below it), and how many files being
    written in it still need its descriptor.

    A folder dropped while files are being written in it (the cache is full, the folder was
    removed, the writer closes) keeps its descriptor until the last of them is committed or
    aborted: closed earlier, the number could be reused by another open, and the rename would
    land in whatever folder that is.
    """

    __slots__ = ("dropped", "fd", "users")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.users = 0
        self.dropped = False

    def release(self) -> None:
        """A file written in this folder is done with it."""
        self.users -= 1
        if self.dropped and not self.users:
            self._close()

    def drop(self) -> None:
        """No longer kept: closed now, or when the last file using it is done."""
        self.dropped = True
        if not self.users:
            self._close()

    def _close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


def _drop_all(*caches: dict[str, _Folder]) -> None:
    """Drop every folder of ``caches`` (a :class:`LocalFileOps` closing, or collected)."""
    for cache in caches:
        folders = list(cache.values())
        cache.clear()
        for folder in folders:
            folder.drop()


class LocalUpload(Generic[_H]):
    """A file written under a temporary name in an open folder and renamed into place in the
    same folder, both names resolved from the folder's descriptor: a link swapped in for the
    folder since it was opened is never written through."""

    __slots__ = ("_final", "_folder", "_ops", "_path", "_temporary", "handle")

    def __init__(
        self,
        ops: LocalFileOps,
        folder: _Folder,
        path: str,
        temporary: str,
        final: str,
        handle: _H,
    ) -> None:
        self._ops = ops
        self._folder: _Folder | None = folder
        self._path = path
        self._temporary = temporary
        self._final = final
        self.handle = handle

    @property
    def temporary(self) -> str:
        """The temporary file's path (as the folder was reached when opened)."""
        return f"{self._path}/{self._temporary}"

    def commit(self) -> None:
        folder = self._folder
        if folder is None:
            raise RuntimeError(f"{self._path}/{self._final} was already committed or aborted")
        try:
            self.handle.close()
            os.replace(self._temporary, self._final, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
        except BaseException:
            self.abort()
            raise
        self._folder = None
        self._ops.done_with(folder)

    def abort(self) -> None:
        folder, self._folder = self._folder, None
        try:
            self.handle.close()
        finally:
            if folder is not None:
                try:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._temporary, dir_fd=folder.fd)
                finally:
                    self._ops.done_with(folder)


class LocalFileOps:
    """Files on a local disk: system calls relative to open folders, never following a link.

    :meth:`open_base` opens the destination once; every other folder is reached from its
    parent's descriptor (:meth:`_folder`), and every file is created, renamed, deleted or read
    by its name in an open folder. The destination and ``files`` stay open until
    :meth:`close`; row folders stay open while among the :data:`KEPT_ROW_FOLDERS` most recently
    used, so a row file costs the same system calls as by path (create, write, close, rename).

    Not thread-safe: the writer calls it from one thread at a time (the event loop's, inline).
    """

    #: Whether files are written under temporary names (which a dead run may leave behind).
    uses_temporaries = True

    def __init__(self, temporary_for: TemporaryNamer) -> None:
        self._temporary_for = temporary_for
        self._base: str | None = None
        self._prefix = ""
        self._closed = False
        #: The destination and the folders at its top (``files``), kept until closed.
        self._fixed: dict[str, _Folder] = {}
        #: Folders further down (row folders), least recently used first.
        self._rows: OrderedDict[str, _Folder] = OrderedDict()
        # A writer dropped without closing (a failed run) still closes its folders.
        self._closer = weakref.finalize(self, _drop_all, self._rows, self._fixed)

    def open_base(self, base: str) -> str:
        """Create the destination if it is missing, open it, and return its real path.

        A destination that is itself a link (or under one) was the user's choice: it is
        resolved here, once. Every later operation starts from this descriptor, so what
        happens to the path afterwards cannot redirect the run.
        """
        if self._base is not None or self._closed:
            raise RuntimeError("the destination is opened once")
        try:
            os.makedirs(base, exist_ok=True)
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
        except (FileExistsError, NotADirectoryError):  # a file there (or put there since)
            raise MrsDeployDestinationError(
                f"destination {base} is an existing file, not a folder; give a folder path"
            ) from None
        real = os.path.realpath(base)
        self._base = real
        self._prefix = real if real.endswith("/") else f"{real}/"
        self._fixed[real] = _Folder(fd)
        return real

    def close(self) -> None:
        """Close every folder kept open (one still used by a file being written, when that
        file is done); nothing can be written after."""
        self._closed = True
        self._closer()

    def _folder(self, path: str) -> _Folder:
        """The open folder at ``path``: the destination, or a folder below it reached from
        its parent without following a link (see :meth:`_open_folder`)."""
        folder = self._rows.get(path)
        if folder is not None:
            self._rows.move_to_end(path)
            return folder
        folder = self._fixed.get(path)
        if folder is not None:
            return folder
        return self._open_folder(path)

    def _open_folder(self, path: str) -> _Folder:
        """Open the folder at ``path`` from its parent (see :meth:`_open_in`).

        :raises MrsDeployDestinationError: a link or a file is where the folder should be.
        :raises FileNotFoundError: nothing is there.
        """
        if self._closed or self._base is None:
            raise RuntimeError("the destination is not open (OutputWriter.begin, or closed)")
        if not path.startswith(self._prefix):
            raise ValueError(f"{path!r} is not below {self._base}")
        parent_path, _, name = path.rpartition("/")
        parent_path = parent_path or "/"
        parent = self._folder(parent_path)
        return self._open_in(parent, parent_path, path, name)

    def _open_in(self, parent: _Folder, parent_path: str, path: str, name: str) -> _Folder:
        """Open the folder ``name`` of ``parent`` with ``O_NOFOLLOW | O_DIRECTORY``, and keep
        it as ``path``: a link or a file there is refused by the open itself, so no check can
        go stale before the folder is used."""
        if name in ("", ".", ".."):
            raise ValueError(f"{path!r} is not a folder below {parent_path}")
        try:
            fd = os.open(name, _OPEN_FOLDER, dir_fd=parent.fd)
        except OSError as exc:
            if exc.errno in _NOT_A_FOLDER:
                raise _not_a_folder(path) from None
            raise
        folder = _Folder(fd)
        if parent_path == self._base:
            self._fixed[path] = folder
        else:
            if len(self._rows) >= KEPT_ROW_FOLDERS:
                self._evict(len(self._rows) + 1 - KEPT_ROW_FOLDERS)
            self._rows[path] = folder
        return folder

    def done_with(self, folder: _Folder) -> None:
        """A file written in ``folder`` is committed or aborted: the folder may be closed,
        and row folders kept past :data:`KEPT_ROW_FOLDERS` while files were being written in
        them are."""
        folder.release()
        if len(self._rows) > KEPT_ROW_FOLDERS:
            self._evict(len(self._rows) - KEPT_ROW_FOLDERS)

    def _evict(self, excess: int) -> None:
        """Close the ``excess`` least recently used row folders that no file is being
        written in (those stay until done: the cache grows past its size while they are)."""
        rows = self._rows
        while excess > 0:
            for key in rows:  # least recently used first
                if not rows[key].users:
                    break
            else:
                return
            rows.pop(key).drop()
            excess -= 1

    def _forget(self, path: str) -> None:
        """Drop ``path`` and every folder below it from the open folders."""
        below = f"{path}/"
        for cache in (self._rows, self._fixed):
            for key in [k for k in cache if k == path or k.startswith(below)]:
                cache.pop(key).drop()

    def _create(self, folder_path: str, name: str) -> tuple[_Folder, int]:
        """A new file ``name`` in the folder at ``folder_path``, open to write, and the
        folder (now in use by the file: release it when done).

        A folder kept open that was removed since (``ENOENT``, perhaps replaced by a link) is
        opened again from the destination, once, so that a link now there is refused rather
        than the file lost in a deleted folder.
        """
        folder = self._folder(folder_path)
        try:
            fd = os.open(name, _OPEN_NEW, 0o666, dir_fd=folder.fd)
        except FileNotFoundError:
            if folder_path == self._base:
                raise
            self._forget_top(folder_path)
            folder = self._folder(folder_path)
            fd = os.open(name, _OPEN_NEW, 0o666, dir_fd=folder.fd)
        folder.users += 1
        return folder, fd

    def _forget_top(self, path: str) -> None:
        """Drop the top folder ``path`` is under (``files``) and everything below it, so they
        are opened again from the destination."""
        top = path[len(self._prefix) :].lstrip("/").partition("/")[0]
        if top:
            self._forget(f"{self._base}/{top}")

    def list(self, base: str) -> Listing:
        """The top of the destination, ``files`` and each row folder's entries.

        Only what Collect writes is walked: below a row folder nothing is (Collect writes
        nothing deeper, and a walk down an arbitrarily deep tree would hold a descriptor per
        level). A folder swapped for a link between being listed and opened is listed as a
        link.
        """
        files: set[str] = set()
        links: set[str] = set()
        folders: set[str] = set()
        top = self._folder(base)
        pending = _scan(top.fd, "", files, links, folders)
        if FILES_DIR in pending:
            found = _open_listed(top.fd, FILES_DIR, links, folders)
            if found is not None:
                try:
                    rows = _scan(found, FILES_DIR, files, links, folders)
                    for name in rows:
                        path = f"{FILES_DIR}/{name}"
                        row = _open_listed(found, name, links, folders, path)
                        if row is not None:
                            try:
                                _scan(row, path, files, links, folders)
                            finally:
                                os.close(row)
                finally:
                    os.close(found)
        return Listing(frozenset(files), frozenset(links), frozenset(folders))

    def read(self, path: str) -> bytes | None:
        folder_path, _, name = path.rpartition("/")
        # Not blocking: a FIFO put there since the listing would wait for a writer for ever.
        flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
        try:
            descriptor = os.open(name, flags, dir_fd=self._folder(folder_path).fd)
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
        """Create ``folder`` (its parent exists), or check that the one there is a folder,
        and keep it open (opening it is the check)."""
        parent_path, _, name = folder.rpartition("/")
        parent_path = parent_path or "/"
        try:
            parent = self._mkdir(parent_path, name)
        except FileNotFoundError:
            # A parent kept open was removed since: open it again (a link there is refused).
            self._forget_top(folder)
            parent = self._mkdir(parent_path, name)
        if folder not in self._rows and folder not in self._fixed:
            self._open_in(parent, parent_path, folder, name)

    def _mkdir(self, parent_path: str, name: str) -> _Folder:
        """Create the folder ``name`` in the one at ``parent_path`` (returned), unless there."""
        parent = self._folder(parent_path)
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, dir_fd=parent.fd)
        return parent

    def start(self, final: str) -> Upload:
        folder_path, _, name = final.rpartition("/")
        temporary = self._temporary_for(name)
        folder, fd = self._create(folder_path, temporary)
        try:
            handle = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary, dir_fd=folder.fd)
            self.done_with(folder)
            raise
        return LocalUpload(self, folder, folder_path, temporary, name, handle)

    def start_row_file(self, final: str) -> RowFileUpload:
        """A row file, written with plain system calls (:class:`Descriptor`)."""
        folder_path, _, name = final.rpartition("/")
        temporary = self._temporary_for(name)
        folder, fd = self._create(folder_path, temporary)
        return LocalUpload(self, folder, folder_path, temporary, name, Descriptor(fd))

    def remove(self, path: str) -> None:
        """Delete the file at ``path``, in its folder as opened without following a link: a
        folder that is a link now is refused, and one that is gone has nothing to delete."""
        folder_path, _, name = path.rpartition("/")
        try:
            folder = self._folder(folder_path)
        except FileNotFoundError:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder.fd)

    def remove_empty_folder(self, folder: str) -> None:
        """Drop ``folder`` if it is empty (its descriptor first); a link there is not a
        folder and stays."""
        self._forget(folder)
        parent_path, _, name = folder.rpartition("/")
        with contextlib.suppress(OSError):
            os.rmdir(name, dir_fd=self._folder(parent_path or "/").fd)


def _not_a_folder(path: str) -> MrsDeployDestinationError:
    return MrsDeployDestinationError(
        f"{path} is not a folder (a file or a symbolic link is there); Collect never "
        "writes through links. Remove it, or collect into another destination."
    )


def _scan(fd: int, relative: str, files: set[str], links: set[str], folders: set[str]) -> list[str]:
    """Sort the entries of the open folder ``fd`` (at ``relative``) into ``files``, ``links``
    and ``folders``; return the names of the folders to walk (``files`` at the top, every
    folder in ``files``)."""
    walk = []
    with os.scandir(fd) as entries:
        for entry in entries:
            path = f"{relative}/{entry.name}" if relative else entry.name
            if entry.is_dir(follow_symlinks=False):
                folders.add(path)
                # Only the files folder is walked: other folders hold other outputs.
                if path == FILES_DIR or relative == FILES_DIR:
                    walk.append(entry.name)
            elif entry.is_file(follow_symlinks=False):
                files.add(path)
            else:  # a link, or a FIFO, socket or device: never read or written
                links.add(path)
    return walk


def _open_listed(
    parent: int, name: str, links: set[str], folders: set[str], path: str | None = None
) -> int | None:
    """Open a folder just listed in ``parent``, without following a link: one swapped for a
    link (or a file) since is listed as a link, one gone since as nothing."""
    path = path or name
    try:
        return os.open(name, _OPEN_FOLDER, dir_fd=parent)
    except FileNotFoundError:
        folders.discard(path)
    except OSError as exc:
        if exc.errno not in _NOT_A_FOLDER:
            raise
        folders.discard(path)
        links.add(path)
    return None


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


class FsspecFileOps:
    """Files on any fsspec file system: written under a temporary name, then moved.

    Used where a file being written may be seen before it is whole (SFTP, HDFS, a mounted
    share...) and for Azure Blob Storage (see :func:`file_ops_for`).
    """

    #: Whether files are written under temporary names (which a dead run may leave behind).
    uses_temporaries = True

    def __init__(self, fs: Any, temporary_for: TemporaryNamer) -> None:
        self._temporary_for = temporary_for
        self.fs = fs

    def start(self, final: str) -> Upload:
        """``final``'s upload, under a temporary name beside it."""
        folder, _, name = final.rpartition("/")
        temporary = f"{folder}/{self._temporary_for(name)}"
        return RenamedUpload(self, temporary, final, self.open_new(temporary))

    def start_row_file(self, final: str) -> RowFileUpload:
        return self.start(final)

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
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass
        except PermissionError as exc:
            # A store's own words ("Access Denied") name neither the object nor the call.
            raise MrsDeployDestinationError(
                f"the store refused to delete {path} ({exc}): Collect and Repair delete under "
                "their destination (the manifest they replace, the journal once done, files "
                "earlier runs wrote and this one does not). Allow deleting objects there for "
                "these credentials"
            ) from exc

    def close(self) -> None:
        """Nothing is held open between calls."""

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
