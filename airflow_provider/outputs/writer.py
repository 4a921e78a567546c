"""Writing one collect run into its destination, touching only what Collect owns.

A run goes through these steps; a crash at any of them leaves the destination recoverable by
the next run (see :mod:`airflow_provider.outputs.ownership`):

1. :meth:`OutputWriter.begin` lists the destination, reads what earlier runs recorded, and
   refuses (before writing anything) when a path the run must write holds something Collect
   does not own. It then records this run's paths and token in the journal and withdraws the
   previous manifest, so a reader never takes a half-replaced folder for a finished one.
2. Row files and the table are written so that each is absent or whole: on a local disk under
   a temporary name, then renamed into place; on an object store straight to the final key
   (one PUT, or a multipart upload completed at the end), which no reader sees before it is
   whole (see :mod:`airflow_provider.outputs.storage`).
3. :meth:`OutputWriter.remove_leftovers` deletes what earlier runs recorded and this run did
   not write, and temporary files of runs that died.
4. :meth:`OutputWriter.finish` writes the manifest, then drops the journal (unless a run that
   began after this one still needs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import re
import stat
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from fsspec.implementations.local import LocalFileSystem

from airflow_provider.api.identifiers import shown
from airflow_provider.outputs.formats import RenderedTable
from airflow_provider.outputs.manifest import MANIFEST_NAME, WrittenFile, encode_manifest
from airflow_provider.outputs.names import FILES_DIR, PlannedFile
from airflow_provider.outputs.ownership import (
    JOURNAL_NAME,
    NOT_RECORDED,
    Listing,
    Ownership,
    abandoned_folders,
    ancestors,
    encode_journal,
    find_conflicts,
    journal_ownership,
    journal_previous_manifest,
    leftovers,
    manifest_ownership,
    parse_manifest,
    quote_paths,
    settle_journal,
    stale_temporaries,
    temporary_name,
)
from airflow_provider.outputs.progress import TaskLogger
from airflow_provider.outputs.storage import (
    BUCKET_PROTOCOLS,
    FileOps,
    LocalFileOps,
    MrsDeployDestinationError,
    RowFileUpload,
    file_ops_for,
    protocols,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

_T = TypeVar("_T")
#: Row files on an object store up to this size are received whole, then written in one call
#: on a worker thread.
WHOLE_FILE_BYTES = 1 << 20

log = logging.getLogger(__name__)


def check_destination(destination: str) -> str:
    """The destination to write to, without surrounding whitespace (a rendered template's
    trailing line break, say); refused when empty, when it climbs out of a folder with ``..``,
    or when a local path would not name one folder whatever the worker's current folder.

    Checked before anything is fetched: ``root/../victim`` names a folder the user may not
    have meant, and Collect writes only where it was told: what is checked is what is used.
    """
    text = str(destination).strip()
    if not text:
        raise MrsDeployDestinationError("destination is empty; give the folder to write to")
    path = text.split("://", 1)[-1]
    if ".." in path.replace("\\", "/").split("/"):
        raise MrsDeployDestinationError(
            f"destination {destination!r} has a '..' segment; write the folder out in full "
            "(for example /data/scores instead of /data/tmp/../scores)"
        )
    _check_local_is_absolute(text)
    _check_store_segments(text)
    return text


def _check_store_segments(text: str) -> None:
    """Refuse an object-store destination with an empty or ``.`` segment (``s3://b//out``,
    ``s3://b/./out``).

    A store keeps such a segment in its keys (``/out/...``) while its listings drop it
    (``out/...``): the writer would then never see what the destination already holds, and
    would overwrite a user's files there, leave an old manifest visible while replacing the
    files, and never remove the files an earlier run left. An empty template value
    (``s3://b/{{ var }}/out``) writes it.
    """
    scheme = _SCHEME.match(text)
    if scheme is None or scheme.group(1).lower() in _LOCAL_SCHEMES:
        return
    segments = text.split("://", 1)[-1].rstrip("/").split("/")
    if any(segment in ("", ".") for segment in segments[1:]):
        raise MrsDeployDestinationError(
            f"destination {text!r} has an empty or '.' segment ('//' or '/./'); object "
            "stores keep it in their keys but not in their listings, so what is there could not "
            "be checked. Write the path without it (a template value may have rendered empty)"
        )


#: A URL scheme (``s3:``, ``file:``); one letter is a Windows drive (``C:``), not a scheme.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
#: Schemes that name the local disk.
_LOCAL_SCHEMES = frozenset({"file", "local"})


def _check_local_is_absolute(text: str) -> None:
    """Refuse a local destination that depends on where the worker runs.

    Nothing expands ``~`` or resolves a relative path against a home folder: both land under
    the worker's current folder (``~/scores`` as a folder literally named ``~``), which
    differs between workers and task runs. A ``file://`` URL's host is not a machine either:
    ``file://localhost/data`` would become ``<cwd>/localhost/data``.
    """
    scheme = _SCHEME.match(text)
    if scheme is None:
        _check_local_path(text, text)
        return
    if scheme.group(1).lower() not in _LOCAL_SCHEMES:
        return  # an object store or another file system: its paths start at its root
    rest = text[scheme.end() :]
    if rest.startswith("//"):
        host, slash, path = rest[2:].partition("/")
        if host:
            raise MrsDeployDestinationError(
                f"destination {text!r} names the host {host!r}, which would become a folder "
                "under the worker's current folder; a file URL takes no host: write "
                f"{scheme.group(1)}:///{path} (three slashes) or /{path}"
            )
        rest = slash + path
    _check_local_path(rest, text)


def _check_local_path(path: str, text: str) -> None:
    """Refuse a local ``path`` (of the destination ``text``) that is not absolute."""
    if path.startswith("~"):
        raise MrsDeployDestinationError(
            f"destination {text!r} starts with '~', which is not expanded (it would create a "
            "folder named '~' under the worker's current folder); write the home folder out "
            "in full, for example /home/airflow/scores"
        )
    if not os.path.isabs(path):
        raise MrsDeployDestinationError(
            f"destination {text!r} is a relative path, which would land under the worker's "
            "current folder; give an absolute path (/data/scores) or an object store URL "
            "(s3://bucket/scores/)"
        )


def check_destination_folder(destination: ObjectStoragePath) -> None:
    """Refuse, before any request to the server, a destination that cannot become the run's
    folder: an existing file, a path under a file, or a bucket that does not exist.

    On a local disk the destination is looked at with ``lstat``: a folder passes, and so
    does a link to a folder (the writer resolves such a link once, by the user's choice);
    anything else there, a link to a file or to nothing included, is refused. The writer
    checks again when it opens the folder, so nothing relies on this check staying true.

    :raises MrsDeployDestinationError: the destination cannot be written.
    """
    fs = destination.fs
    base = destination.path.rstrip("/") or "/"
    if isinstance(fs, LocalFileSystem):
        _check_local_folder(destination, base)
        return
    check_bucket(destination)
    if fs.isfile(base):
        raise _existing_file(destination)


def _check_local_folder(destination: ObjectStoragePath, base: str) -> None:
    """Refuse a local ``base`` that is not a folder nor a link to one (see
    :func:`check_destination_folder`); a missing one is fine: the writer creates it."""
    try:
        mode = os.lstat(base).st_mode
    except FileNotFoundError:
        return  # created by the writer
    except NotADirectoryError:
        raise MrsDeployDestinationError(
            f"destination {destination} is below an existing file, not a folder; give a folder path"
        ) from None
    if stat.S_ISDIR(mode) or (stat.S_ISLNK(mode) and os.path.isdir(base)):
        return
    raise _existing_file(destination)


def _existing_file(destination: ObjectStoragePath) -> MrsDeployDestinationError:
    return MrsDeployDestinationError(
        f"destination {destination} is an existing file, not a folder; give a folder path"
    )


def check_bucket(destination: ObjectStoragePath) -> None:
    """Refuse a destination on an object store whose bucket (or container) does not exist.

    Collect never creates one: a mistyped bucket name must fail, not become a new bucket
    with the account's default settings (access, encryption, lifecycle) that nobody reads.
    Asked the way the store's own file system asks before creating it.

    :raises MrsDeployDestinationError: the bucket does not exist, or these credentials
        cannot see it.
    """
    fs = destination.fs
    if not protocols(fs) & BUCKET_PROTOCOLS:
        return
    bucket = destination.path.lstrip("/").split("/", 1)[0]
    if bucket and fs.exists(bucket):
        return
    unanswered = _unanswered_probe(fs, bucket) if bucket else None
    if unanswered is not None:
        raise MrsDeployDestinationError(
            f"the bucket {bucket!r} of destination {destination} could not be checked: the "
            f"store answered {unanswered}. This may pass (a throttled or busy store): retry. "
            "Nothing was written."
        )
    raise MrsDeployDestinationError(
        f"the bucket {bucket!r} of destination {destination} does not exist, or these "
        "credentials cannot see it; Collect does not create buckets: create it (with the "
        "settings it needs) or correct the destination. Nothing was written."
    )


def _unanswered_probe(fs: Any, bucket: str) -> str | None:
    """Why the store did not say whether ``bucket`` exists, or None when it did say no.

    A store's ``exists`` answers False for any error, a throttled request (503 SlowDown) too:
    asked again for the bucket's details, "not found" or "access denied" is an answer, anything
    else is not.
    """
    try:
        fs.info(bucket)
    except (FileNotFoundError, PermissionError):
        return None
    except Exception as exc:  # the store's own error types: each says what it could not do
        return f"{type(exc).__name__}: {shown(str(exc), 200)}"
    return None


class _FileTarget:
    """A row file being written, hashed and counted on the way."""

    def __init__(self, planned: PlannedFile, upload: RowFileUpload):
        self.planned = planned
        self.upload = upload
        self.handle = upload.handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.size += len(chunk)
        self.handle.write(chunk)


class OutputWriter:
    """Writes one collect run into ``destination``; see the module docstring for the steps.

    :param destination: the folder (any ``ObjectStoragePath``).
    :param logger: where removals and warnings are logged (the task's logger).
    """

    def __init__(self, destination: ObjectStoragePath, *, logger: TaskLogger | None = None) -> None:
        self.destination = destination
        self.log: TaskLogger = logger or log
        fs = destination.fs
        # Row files bypass the path object: per file, its conveniences (stat before mkdir,
        # exists before rename, protocol parsing) would cost more than the write itself.
        self._local = isinstance(fs, LocalFileSystem)
        self._token = uuid.uuid4().hex[:12]
        self._numbers = itertools.count()
        self._files: FileOps = (
            LocalFileOps(self._temporary_for)
            if self._local
            else file_ops_for(fs, self._temporary_for)
        )
        self._base = destination.path.rstrip("/") or "/"
        self._folders: set[int] = set()
        self._listing = Listing()
        self._ownership = Ownership()
        #: The journal as this run wrote it: found unchanged at the end, no run overlapped.
        self._journal = b""
        self._started = False

    def close(self) -> None:
        """Release what the writer holds open (on a local disk, the destination's folders).

        :meth:`finish` closes; a run that fails before it should close (or use the writer
        as a context manager), else the folders stay open until the writer is collected.
        Again is harmless; nothing can be written after.
        """
        self._files.close()

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def manifest_path(self) -> ObjectStoragePath:
        """Where the manifest goes."""
        return self.destination / MANIFEST_NAME

    def begin(self, planned: Iterable[str]) -> None:
        """Check the destination, record this run's paths, withdraw the previous manifest.

        :param planned: every path this run will write, relative to the destination (the
            table and row files; the manifest is added here).
        :raises MrsDeployDestinationError: a planned path holds something Collect does not
            own, or a folder it needs is a file or a link. Nothing was written.
        """
        paths = {MANIFEST_NAME, *planned}
        self._prepare_base()
        listing = self._files.list(self._base)
        ownership, problems, previous_manifest = self._read_ownership(listing)
        problems += find_conflicts(paths, listing, ownership.owned)
        if problems:
            raise MrsDeployDestinationError(
                f"Collect will not overwrite what it did not write: under {self.destination}, "
                f"{quote_paths(problems)}. Move these away, or collect into an empty folder "
                f"or one only Collect writes to.{_stray_hint(problems)} Nothing was written."
            )
        if ownership.pending:
            self.log.warning(
                "An earlier collect into %s did not finish; its leftovers are replaced",
                self.destination,
            )
        if ownership.ignored:
            self.log.warning(
                "Ignored %d recorded paths that Collect never writes: %s",
                len(ownership.ignored),
                quote_paths(list(ownership.ignored)),
            )
        self._listing, self._ownership = listing, ownership
        self._journal = encode_journal(
            Ownership(ownership.owned | paths, ownership.pending | {self._token}),
            previous_manifest,
        )
        self._atomic_bytes(JOURNAL_NAME, self._journal)
        self._started = True
        if listing.exists(MANIFEST_NAME):
            self._files.remove(f"{self._base}/{MANIFEST_NAME}")
            self.log.info("Withdrew the previous manifest of %s while collecting", self.destination)
        if any(path.startswith(f"{FILES_DIR}/") for path in paths):
            self._files.makedirs(f"{self._base}/{FILES_DIR}")

    async def abegin(self, planned: Iterable[str]) -> None:
        """:meth:`begin` from an event loop (in a worker thread on an object store)."""
        await self._storage(self.begin, list(planned))

    def _prepare_base(self) -> None:
        """Create the destination (never a bucket); on a local disk, open it once and
        continue from there (every folder below is reached from its descriptor) and from its
        real path."""
        base, files = self._base, self._files
        if isinstance(files, LocalFileOps):
            self._base = files.open_base(base)  # refuses a file there
        else:
            # Never the bucket: on an object store this makes nothing (a key implies its
            # folders); on file systems with real folders, the destination's.
            check_destination_folder(self.destination)
            files.makedirs(base)

    def _read_ownership(
        self, listing: Listing
    ) -> tuple[Ownership, list[str], dict[str, Any] | None]:
        """What the manifest and the journal record; problems with either file; and the last
        complete run's manifest (the current one, else the one an unfinished run withdrew),
        which the journal carries until this run's manifest replaces it."""
        ownership = Ownership()
        problems = []
        previous: dict[str, Any] | None = None
        for name, parse in ((MANIFEST_NAME, manifest_ownership), (JOURNAL_NAME, journal_ownership)):
            if name in listing.links:
                problems.append(f"{name} (a symbolic link or special file)")
                continue
            if name in listing.folders:
                problems.append(f"{name} (a folder)")
                continue
            if name not in listing.files:
                continue
            data = self._files.read(f"{self._base}/{name}")
            record = parse(data) if data is not None else None
            if record is not None:
                ownership = ownership.merge(record)
                if previous is None and data is not None:
                    previous = (
                        parse_manifest(data)
                        if name == MANIFEST_NAME
                        else journal_previous_manifest(data)
                    )
            elif name == JOURNAL_NAME:
                problems.append(f"{name} (not a record Collect wrote)")
        return ownership, problems, previous

    def write_file(self, planned: PlannedFile, chunks: Iterable[bytes]) -> WrittenFile:
        """Stream one row file into place, hashing as it goes."""
        target = self._open_target(planned)
        try:
            for chunk in chunks:
                target.write(chunk)
            return self._commit(target)
        except BaseException:
            self._discard(target)
            raise

    async def awrite_file(self, planned: PlannedFile, chunks: AsyncIterable[bytes]) -> WrittenFile:
        """:meth:`write_file` for chunks that arrive on an event loop.

        On a local disk the file streams and every storage call runs inline: each takes
        microseconds, less than handing it to a thread (measured: a thread per file made a
        collect of 4,000 small files 40% slower, the loop waiting for the interpreter lock on
        every socket call). On an object store each storage call waits a network round trip,
        so it runs in a worker thread while the other downloads carry on; a file up to
        :data:`WHOLE_FILE_BYTES` (most row files: a plot, a small CSV) is received whole first
        and written and hashed in one such call (on S3, one PUT).
        """
        iterator = aiter(chunks)
        try:
            if self._local:
                return await self._astream_local(planned, iterator)
            head: list[bytes] = []
            size = 0
            async for chunk in iterator:
                head.append(chunk)
                size += len(chunk)
                if size > WHOLE_FILE_BYTES:
                    break
            else:
                return await asyncio.to_thread(self.write_file, planned, head)
            return await self._astream_file(planned, head, iterator)
        finally:
            closing = getattr(iterator, "aclose", None)
            if closing is not None:
                await closing()

    async def _astream_file(
        self, planned: PlannedFile, head: list[bytes], rest: AsyncIterator[bytes]
    ) -> WrittenFile:
        """A file larger than :data:`WHOLE_FILE_BYTES` to an object store: ``head`` (already
        received), then the rest, each storage call in a worker thread."""
        target = await self._storage(self._open_target, planned)
        try:
            for chunk in head:
                await self._storage(target.write, chunk)
            async for chunk in rest:
                await self._storage(target.write, chunk)
            return await self._storage(self._commit, target)
        except BaseException:
            await asyncio.shield(self._storage(self._discard, target))
            raise

    async def _astream_local(self, planned: PlannedFile, rest: AsyncIterator[bytes]) -> WrittenFile:
        """A file on a local disk: every storage call inline, as in
        :meth:`write_file` (no awaitable per call: a collect lands thousands of small files)."""
        target = self._open_target(planned)
        try:
            async for chunk in rest:
                target.write(chunk)
            return self._commit(target)
        except BaseException:
            self._discard(target)
            raise

    async def _storage(self, call: Callable[..., _T], *args: Any) -> _T:
        if self._local:
            return call(*args)
        return await asyncio.to_thread(call, *args)

    def _temporary_for(self, name: str) -> str:
        """A hidden name for a file named ``name`` to be written under in the same folder,
        carrying this run's token (unique per process and write, without drawing a random
        number per file)."""
        return temporary_name(name, self._token, os.getpid(), next(self._numbers))

    def _open_target(self, planned: PlannedFile) -> _FileTarget:
        if not self._started:
            raise RuntimeError("OutputWriter.begin() must run before files are written")
        if planned.index not in self._folders:
            self._files.makedirs(f"{self._base}/{FILES_DIR}/{planned.index}")
            self._folders.add(planned.index)
        return _FileTarget(planned, self._files.start_row_file(f"{self._base}/{planned.path}"))

    def _commit(self, target: _FileTarget) -> WrittenFile:
        target.upload.commit()
        planned = target.planned
        return WrittenFile(
            planned.index,
            planned.safe,
            planned.path,
            target.size,
            target.digest.hexdigest(),
            None if planned.name == planned.safe else planned.name,
        )

    def _discard(self, target: _FileTarget) -> None:
        target.upload.abort()

    def write_table(self, table: RenderedTable) -> str:
        """Write the outputs table; return its path relative to the destination."""
        with self._atomic_write(table.name) as handle:
            table.write(handle)
        return table.name

    def _atomic_bytes(self, relative: str, data: bytes) -> None:
        with self._atomic_write(relative) as handle:
            handle.write(data)

    @contextlib.contextmanager
    def _atomic_write(self, relative: str) -> Iterator[BinaryIO]:
        """Write a file of the destination so that it appears whole or not at all; on failure
        nothing is left and the previous file, if any, stays."""
        upload = self._files.start(f"{self._base}/{relative}")
        try:
            yield upload.handle
        except BaseException:
            upload.abort()
            raise
        upload.commit()

    def remove_leftovers(self, written: Iterable[str]) -> list[str]:
        """Delete what earlier runs recorded here and this run did not write, and temporary
        files of earlier runs that died; return the removed recorded paths."""
        kept = {*written, MANIFEST_NAME}
        removed = leftovers(self._ownership.owned, kept, self._listing)
        stale = stale_temporaries(self._listing, self._ownership, self._token)
        for relative in [*removed, *stale]:
            self._files.remove(f"{self._base}/{relative}")
        self._remove_empty_folders(
            {folder for path in [*removed, *stale] for folder in ancestors(path)}.union(
                abandoned_folders(self._ownership.owned, kept, self._listing)
            )
        )
        if removed:
            self.log.info(
                "Removed %d files an earlier collect wrote here and this run did not: %s",
                len(removed),
                quote_paths(removed),
            )
        if stale:
            self.log.info(
                "Removed %d temporary files of an earlier collect that did not finish: %s",
                len(stale),
                quote_paths(stale),
            )
        return removed

    def _remove_empty_folders(self, folders: Iterable[str]) -> None:
        """Drop ``folders`` that are empty: those above the files just removed, and those an
        earlier run made and left empty (a row folder made before a download that failed
        before its first byte, which left no file to remove).

        Deepest first, so a row folder emptied here lets ``files`` go too. Each is removed by
        name in its parent as opened without following a link (a link there is not a folder
        and stays), and only if empty: a folder that holds anything stays.
        """
        for folder in sorted(folders, key=lambda f: f.count("/"), reverse=True):
            self._files.remove_empty_folder(f"{self._base}/{folder}")

    def finish(self, manifest: Mapping[str, Any]) -> str:
        """Write the manifest last, atomically, then settle the journal; return the manifest's
        full path. The writer is closed after (see :meth:`close`).

        The journal is dropped when it is as this run wrote it and no earlier run was
        unfinished when this one began. Otherwise another run may have written here meanwhile
        (two tries of one task overlapping: a stuck try still writing while its retry runs):
        see :meth:`_settle_overlap`.
        """
        try:
            journal = self._files.read(f"{self._base}/{JOURNAL_NAME}")
            overlapped = journal != self._journal or bool(self._ownership.pending)
            # Read before this run's manifest replaces it: a run that overlapped this one
            # may have published one since this run withdrew the previous manifest.
            published = self._published_manifest() if overlapped else None
            self._atomic_bytes(MANIFEST_NAME, encode_manifest(manifest))
            if overlapped:
                self._settle_overlap(journal, published, manifest)
            else:
                self._files.remove(f"{self._base}/{JOURNAL_NAME}")
        finally:
            self.close()
        return str(self.manifest_path)

    def _published_manifest(self) -> Ownership | None:
        """What a manifest at the destination now records (None: none, or not one of ours)."""
        data = self._files.read(f"{self._base}/{MANIFEST_NAME}")
        return manifest_ownership(data) if data is not None else None

    def _settle_overlap(
        self, journal: bytes | None, published: Ownership | None, manifest: Mapping[str, Any]
    ) -> None:
        """End a run that overlapped another so that every path either run wrote stays
        recorded (in this manifest or the journal) or is removed.

        While a run that began after this one has not finished, the journal is written back
        without this run's token (and with every path recorded so far) for that run to find.
        Otherwise this manifest is the last: recorded paths it does not list, which the other
        run landed after this one listed the destination, are removed, then the journal. (An
        unfinished run this one took over may be a stuck try still writing, not a dead one:
        hence the check even when the journal is unchanged, at the cost of one listing.)
        """
        recorded = journal_ownership(journal) if journal is not None else None
        ours = frozenset(_manifest_paths(manifest))
        settlement = settle_journal(
            recorded or Ownership(),
            published,
            token=self._token,
            taken_over=self._ownership.pending,
            ours=ours,
        )
        if settlement.keep is not None:
            previous = journal_previous_manifest(journal) if journal is not None else None
            self._atomic_bytes(JOURNAL_NAME, encode_journal(settlement.keep, previous))
            self.log.warning(
                "Another collect into %s began after this one and has not finished; kept the "
                "ownership journal for it",
                self.destination,
            )
            return
        listing = self._files.list(self._base)
        removed = leftovers(settlement.leftovers, (), listing)
        for relative in removed:
            self._files.remove(f"{self._base}/{relative}")
        self._remove_empty_folders(abandoned_folders(settlement.leftovers, ours, listing))
        if removed:
            self.log.warning(
                "Removed %d files another collect into %s wrote while this one ran: %s",
                len(removed),
                self.destination,
                quote_paths(removed),
            )
        self._files.remove(f"{self._base}/{JOURNAL_NAME}")


def _stray_hint(problems: Iterable[str]) -> str:
    """How a file no record names may have come there, when one is among ``problems``.

    A try of a task that went on writing after a later try had finished collecting here, then
    died, leaves files no manifest or journal records (see the output docs on overlapping
    tries): only someone who knows nobody else writes here can tell them apart from their own.
    """
    if not any(problem.endswith(f"({NOT_RECORDED})") for problem in problems):
        return ""
    return (
        " If nothing but Collect writes here, such a file may have been left by an earlier "
        "try of this task that went on writing after a later try had collected here; then "
        "delete it."
    )


def _manifest_paths(manifest: Mapping[str, Any]) -> list[str]:
    """The paths a manifest records (its table, its files, itself)."""
    files = manifest.get("files") or []
    paths = [str(manifest["table"]["path"]), MANIFEST_NAME]
    paths.extend(str(entry["path"]) for entry in files)
    return paths
