"""One collect run: read a batch set's results into a table, land the rows' files, write the
manifest. Shared by Collect and by the repair of failed rows.

Rows of a batch set come from its batches without a row map, in input order; a batch with a
row map (a repair) replaces the results of the rows it names, later batches winning. A run can
land the files of chosen rows only and keep the others' files as an earlier run recorded them:
a repair replaces what it re-scored and touches nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider.api import (
    BatchStatus,
    ExecutionResult,
    MrsDeployConfigurationError,
    MrsDeployError,
    MrsDeployNotFoundError,
    MrsDeployProtocolError,
)
from airflow_provider.api.identifiers import segment_problem, shown
from airflow_provider.api.models import decode_output_file
from airflow_provider.batch_set import BatchPart, BatchSet
from airflow_provider.exceptions import (
    MrsDeployFailedRowsError,
    MrsDeployOutputsError,
    MrsDeployRecordsError,
)
from airflow_provider.operators.parameters import (
    flag,
    optional_share,
    optional_whole_number,
    positive_seconds,
    whole_number,
)
from airflow_provider.outputs import (
    OutputFormat,
    OutputsTable,
    OutputWriter,
    PlannedFile,
    ProgressLog,
    RenderedTable,
    WrittenFile,
    build_manifest,
    plan_row_files,
)
from airflow_provider.outputs.progress import DEFAULT_INTERVAL, TaskLogger
from airflow_provider.safe_text import printable
from airflow_provider.waiting.progress import BatchOutcome, evaluate_batches
from airflow_provider.waiting.tasks import raise_if_failed

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

    from airflow_provider.api import ServiceInfo
    from airflow_provider.hooks import MrsDeployHook

_T = TypeVar("_T")

#: How many failed rows an error message quotes.
QUOTED_FAILURES = 3


@dataclass(frozen=True)
class RowLocation:
    """Where a row lives: its batch and index there, and its index in the whole submission."""

    batch_id: str
    batch_index: int
    global_index: int


@dataclass(frozen=True)
class RowPlan:
    """A row's files and where each lands: downloaded by name, or decoded from its result."""

    location: RowLocation
    files: Sequence[PlannedFile]
    #: The server's name to base64 content, for files that came inline in the result.
    inline: Mapping[str, str]


@dataclass(frozen=True)
class CollectOptions:
    """How the rows' files are fetched (see the Collect operator's parameters)."""

    include_files: bool = True
    file_listing: str = "auto"
    max_concurrent_downloads: int = 8
    progress_interval: float | timedelta = DEFAULT_INTERVAL

    def __post_init__(self) -> None:
        """Checked when built, which the operators do when the DAG is parsed."""
        whole_number("max_concurrent_downloads", self.max_concurrent_downloads, 1)
        flag("include_files", self.include_files)
        if self.file_listing not in ("auto", "always"):
            raise MrsDeployConfigurationError("file_listing must be 'auto' or 'always'")
        positive_seconds("progress_interval", self.progress_interval)

    @property
    def progress_seconds(self) -> float:
        """``progress_interval`` in seconds, whichever form it was given in."""
        return positive_seconds("progress_interval", self.progress_interval)


def check_failure_limits(max_failed_rows: object, max_failed_ratio: object) -> None:
    """Refuse, when the DAG is parsed, failure limits that cannot mean what they say:
    ``max_failed_ratio=2`` or ``nan`` would let every row fail without failing the task, ``-1``
    would fail every run, and ``"0.1"`` failed with a bare ``TypeError`` once the outputs were
    written.

    :raises MrsDeployConfigurationError: naming the parameter and the value.
    """
    optional_whole_number("max_failed_rows", max_failed_rows, 0)
    optional_share("max_failed_ratio", max_failed_ratio)


@dataclass
class ReadRows:
    """What reading a batch set's results gave: the table, and what the writing step needs."""

    table: OutputsTable
    #: The rows that may have files to land, with their results.
    file_rows: list[tuple[RowLocation, ExecutionResult]] = field(default_factory=list)
    #: Each failed row's index and message, in row order.
    failed: list[tuple[int, str | None]] = field(default_factory=list)
    #: Which batch produced which rows: the base batches as read, then the replacing ones.
    produced: list[BatchPart] = field(default_factory=list)


@dataclass(frozen=True)
class CollectedSummary:
    """What a collect run wrote (the operators' return value is built from it)."""

    destination: str
    table: str
    manifest: str
    rows: int
    failed: Sequence[tuple[int, str | None]]
    files: int

    def to_json(self) -> dict[str, Any]:
        """The small dict the operators return and put on their asset event."""
        return {
            "destination": self.destination,
            "table": self.table,
            "manifest": self.manifest,
            "rows": self.rows,
            "failed_rows": len(self.failed),
            "files": self.files,
        }


class Collector:
    """Reads a batch set's results and lands them, with the hook and options of one task.

    :param hook: the task's hook.
    :param log: the task's logger.
    :param options: how files are fetched.
    """

    def __init__(self, hook: MrsDeployHook, log: TaskLogger, options: CollectOptions) -> None:
        self.hook = hook
        self.log = log
        self.options = options
        self._declares_files = True

    def read(self, ref: BatchSet, table: OutputsTable, *, declares_files: bool) -> ReadRows:
        """Fetch every batch's results once into ``table``, the replacing batches first.

        A base batch's answer is read as it arrives, its rows going into the table a chunk at
        a time (:meth:`MrsDeployHook.read_batch_results`): the memory held does not grow with
        the batch, only the table does. The replacing batches' results (few rows: the
        repaired ones) are held until their rows' turn. Nothing is written before every
        batch is known to be complete. Objects alive before the read are kept out of the
        collector's passes meanwhile (:func:`frozen_heap`).

        :param declares_files: the service declares output files (rows without
            ``changedFiles`` are then listed).
        """
        self._declares_files = declares_files
        read = ReadRows(table)
        states: list[BatchStatus] = []
        incomplete: list[str] = []
        replacements: dict[int, tuple[RowLocation, ExecutionResult]] = {}
        with frozen_heap():
            for part in ref.replacing_parts:
                status = self._status(ref, part.batch_id)
                states.append(dataclasses.replace(status, results=()))
                problem = self._take_replacements(part, status, replacements)
                if problem is not None:
                    incomplete.append(problem)
            for part in ref.base_parts:
                status, problem = self._stream_rows(ref, part, read, replacements)
                states.append(status)
                if problem is not None:
                    incomplete.append(problem)
        progress = evaluate_batches(ref.batch_ids, states)
        raise_if_failed(ref, progress)
        if progress.outcome is not BatchOutcome.COMPLETE:
            raise MrsDeployError(
                f"{ref.describe()} is not complete yet ({progress.describe()}); wait for it "
                "with MrsDeployBatchSensor before collecting"
            )
        if incomplete:
            raise MrsDeployError(incomplete[0])
        beyond = sorted(row for row in replacements if row >= len(table))
        if beyond:
            raise MrsDeployError(
                f"{ref.describe()}: a batch replaces row {beyond[0]}, but the batches before it "
                f"hold {len(table)} rows; refusing to write rows that were never submitted"
            )
        read.produced.extend(ref.replacing_parts)
        return read

    def _status(self, ref: BatchSet, batch_id: str) -> BatchStatus:
        return self.hook.get_batch_status(
            ref.service_name, ref.service_version, batch_id, show_partial_results=False
        )

    @staticmethod
    def _count_problem(part: BatchPart, total: int, got: int) -> str | None:
        """Why a complete batch's answer cannot be used: fewer results than rows, or a count
        that differs from what the batch set says was submitted in it."""
        if got != total:
            return (
                f"batch {part.batch_id} reports {total} rows but returned {got} results; "
                "refusing to write an incomplete table"
            )
        if part.row_count is not None and part.row_count != got:
            return (
                f"batch {part.batch_id} returned {got} results, but {part.row_count} rows were "
                "submitted in it; refusing to write a table whose rows would not match the input"
            )
        return None

    def _take_replacements(
        self,
        part: BatchPart,
        status: BatchStatus,
        replacements: dict[int, tuple[RowLocation, ExecutionResult]],
    ) -> str | None:
        """Hold a replacing batch's results by the rows its row map names (later batches
        replace earlier ones); return why they cannot be used, or None."""
        if not status.is_terminal or status.is_failed:
            return None
        problem = self._count_problem(part, status.total_item_count, len(status.results))
        if problem is not None:
            return problem
        for batch_index, (row, result) in enumerate(
            zip(part.rows or (), status.results, strict=True)
        ):
            replacements[row] = (RowLocation(part.batch_id, batch_index, row), result)
        return None

    def _stream_rows(
        self,
        ref: BatchSet,
        part: BatchPart,
        read: ReadRows,
        replacements: Mapping[int, tuple[RowLocation, ExecutionResult]],
    ) -> tuple[BatchStatus, str | None]:
        """Read a base batch's rows into the table as they arrive (replaced rows taking their
        newer result), noting failed rows and rows with files; return its state and counts,
        and why its rows cannot be used, or None. A batch that is not complete adds nothing
        (the caller reports it).

        The batch set says where the batch's rows belong (``first_row``) and how many it holds:
        an answer that disagrees is refused rather than written at the wrong rows.
        """
        offset = len(read.table)
        misplaced = part.first_row is not None and part.first_row != offset
        taken = 0

        def take(results: list[ExecutionResult]) -> None:
            nonlocal taken
            if misplaced:
                return
            rows: list[tuple[RowLocation, ExecutionResult]] = []
            for result in results:
                row = offset + taken
                rows.append(
                    replacements.get(row) or (RowLocation(part.batch_id, taken, row), result)
                )
                taken += 1
            read.table.add([result for _, result in rows])
            for location, result in rows:
                if not result.success:
                    read.failed.append((location.global_index, result.error_message))
                if self._has_files(result):
                    read.file_rows.append((location, result))

        status = self.hook.read_batch_results(
            ref.service_name, ref.service_version, part.batch_id, take
        )
        if not status.is_terminal or status.is_failed:
            return status, None
        if misplaced:
            return status, (
                f"batch {part.batch_id} holds the rows from {part.first_row} on, but the "
                f"batches before it hold {offset} rows: the batch set is not in input order"
            )
        problem = self._count_problem(part, status.total_item_count, taken)
        if problem is None:
            read.produced.append(BatchPart(part.batch_id, offset, taken))
        return status, problem

    def _has_files(self, result: ExecutionResult) -> bool:
        """Whether the row may have files to land: names to fetch or list, or inline files."""
        if not self.options.include_files:
            return False
        return self._file_names_from_result(result) != () or bool(result.output_files)

    def write(
        self,
        ref: BatchSet,
        read: ReadRows,
        destination: ObjectStoragePath,
        output_format: OutputFormat,
        *,
        inputs: pd.DataFrame | None = None,
        land_rows: Collection[int] | None = None,
        kept_files: Sequence[WrittenFile] = (),
        manifest_extra: Mapping[str, Any] | None = None,
    ) -> CollectedSummary:
        """Land the files, the table and the manifest under ``destination``.

        :param inputs: the records, written beside the outputs as ``input_<name>``.
        :param land_rows: land the files of these rows only (None: every row's).
        :param kept_files: files of rows not landed now, kept as an earlier run recorded them.
        :param manifest_extra: more manifest entries (a repair's record).
        """
        table = read.table
        # Typed and converted now: a value the format cannot hold fails before any download.
        rendered = RenderedTable(table.build(inputs), output_format)
        if table.renamed_outputs:
            self.log.warning(
                "Outputs named like the table's own columns are written as: %s",
                ", ".join(f"{k} -> {v}" for k, v in table.renamed_outputs.items()),
            )
        rows = read.file_rows
        if land_rows is not None:
            chosen = set(land_rows)
            rows = [row for row in rows if row[0].global_index in chosen]
        # Closed however the run ends: on a local disk it holds the destination's folders open.
        with OutputWriter(destination, logger=self.log) as writer:
            kept = [f.path for f in kept_files]
            with frozen_heap():
                landed = run_coroutine(
                    lambda: self._aland(ref, writer, [rendered.name, *kept], rows)
                )
            files = [*landed, *kept_files]
            table_path = writer.write_table(rendered)
            writer.remove_leftovers([table_path, *(f.path for f in files)])
            manifest = build_manifest(
                batch_ids=ref.base_batch_ids,
                batches=[part.to_json() for part in read.produced],
                service_name=ref.service_name,
                service_version=ref.service_version,
                table_path=table_path,
                output_format=output_format,
                rows=len(table),
                failed_rows=len(read.failed),
                failed_row_indexes=[index for index, _ in read.failed],
                files=files,
                renamed_outputs=table.renamed_outputs,
            )
            if ref.records_sha256 is not None:
                manifest["records_sha256"] = ref.records_sha256
            manifest.update(manifest_extra or {})
            manifest_path = writer.finish(manifest)
        return CollectedSummary(
            destination=str(writer.destination),
            table=str(writer.destination / table_path),
            manifest=manifest_path,
            rows=len(table),
            failed=read.failed,
            files=len(files),
        )

    async def _aland(
        self,
        ref: BatchSet,
        writer: OutputWriter,
        other_paths: Sequence[str],
        rows: Sequence[tuple[RowLocation, ExecutionResult]],
    ) -> list[WrittenFile]:
        """Plan every row's files, claim the destination, then land the files.

        Every path is known before :meth:`OutputWriter.begin`, so a destination holding
        someone else's file at one of them is refused before anything is written. Listing and
        downloads run ``max_concurrent_downloads`` at a time on one event loop with the hook's
        async client: a request costs a fraction of the CPU a blocking one does, and no thread
        waits on another for the interpreter lock.

        :param other_paths: the run's other paths (the table, kept files).
        """
        try:
            plans = await self._aplan(ref, rows)
            await writer.abegin([*other_paths, *(f.path for plan in plans for f in plan.files)])
            return await self._aland_files(ref, writer, plans)
        finally:
            await self.hook.aclose()

    async def _aplan(
        self, ref: BatchSet, rows: Sequence[tuple[RowLocation, ExecutionResult]]
    ) -> list[RowPlan]:
        """Each row's file names (from its result, else listed by the server), made safe."""
        names = [self._file_names_from_result(result) for _, result in rows]
        to_list = [position for position, known in enumerate(names) if known is None]
        progress = ProgressLog(
            "rows' file names listed",
            len(to_list),
            self.log,
            interval=self.options.progress_seconds,
        )

        async def list_names(position: int) -> None:
            location = rows[position][0]
            names[position] = await self.hook.alist_batch_files(
                ref.service_name, ref.service_version, location.batch_id, location.batch_index
            )
            progress.advance()

        await self._in_parallel(to_list, list_names)
        plans = []
        for (location, result), row_names in zip(rows, names, strict=True):
            if row_names:
                _refuse_unfetchable(location, row_names)
            inline = {} if row_names else dict(result.output_files)
            files = plan_row_files(location.global_index, row_names or list(inline))
            plans.append(RowPlan(location, files, inline))
        return plans

    async def _aland_files(
        self, ref: BatchSet, writer: OutputWriter, plans: Sequence[RowPlan]
    ) -> list[WrittenFile]:
        total = sum(len(plan.files) for plan in plans)
        progress = ProgressLog(
            "files landed", total, self.log, interval=self.options.progress_seconds
        )
        per_row: list[list[WrittenFile]] = [[] for _ in plans]

        async def land(position: int) -> None:
            plan, written = plans[position], per_row[position]
            for planned in plan.files:
                if plan.inline:
                    where = f"row {plan.location.global_index}, file {shown(planned.name)}"
                    chunks = _decoded(plan.inline[planned.name], where)
                else:
                    chunks = self.hook.aiter_batch_file(
                        ref.service_name,
                        ref.service_version,
                        plan.location.batch_id,
                        plan.location.batch_index,
                        planned.name,
                    )
                written.append(await writer.awrite_file(planned, chunks))
                progress.advance()

        await self._in_parallel([i for i, plan in enumerate(plans) if plan.files], land)
        progress.finish()
        return [f for written in per_row for f in written]

    async def _in_parallel(
        self, items: Sequence[_T], work: Callable[[_T], Awaitable[None]]
    ) -> None:
        """Run ``work`` on every item, ``max_concurrent_downloads`` at a time; the first
        failure stops the rest and is raised as itself."""
        pending = iter(items)

        async def worker() -> None:
            for item in pending:
                await work(item)

        workers = [
            asyncio.ensure_future(worker())
            for _ in range(min(self.options.max_concurrent_downloads, len(items)))
        ]
        try:
            if workers:
                done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    error = None if task.cancelled() else task.exception()
                    if error is not None:
                        raise error
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    def _file_names_from_result(self, result: ExecutionResult) -> Sequence[str] | None:
        """The row's file names when its result says them, else None: ask the server.

        With ``file_listing="auto"`` a row whose result lists ``changedFiles`` needs no listing
        call, and a row of a service that declares no output files and changed none is skipped:
        for large batches the listing calls, not the downloads, dominate collect's time.
        """
        if self.options.file_listing == "auto":
            if result.changed_files:
                return result.changed_files
            if not self._declares_files:
                return ()
        return None


def _refuse_unfetchable(location: RowLocation, names: Sequence[str]) -> None:
    """Refuse, before the destination is claimed, a file name a row's result gave
    (``changedFiles``) that no request can name: a lone surrogate, ``.`` or ``..``.

    Listed names are checked by the listing's parser; these would otherwise fail at their
    download, after other files had landed.
    """
    for name in names:
        problem = segment_problem(name)
        if problem is not None:
            raise MrsDeployProtocolError(
                f"row {location.global_index} (batch {location.batch_id}, row "
                f"{location.batch_index}) names the changed file {shown(name)}, which cannot "
                f"be fetched by name ({problem}); nothing was written. The server breaks the "
                "API contract: check the service's file names, or pass include_files=False "
                "to collect the outputs without files"
            )


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the objects alive now out of the collector's passes while results are read or
    files land.

    A task's process holds Airflow and its imports (a few hundred thousand long-lived
    objects), and once the files land, also the table and every row's result. Reading the
    results of 10,000 rows allocated enough for a full pass over all of that (about 13 µs a
    row, measured in a warm process), and landing thousands of files makes the collector run
    every few files, each full pass walking the whole table again (about a tenth of the
    landing's CPU). Frozen objects are still freed once unreferenced after
    :func:`gc.unfreeze`.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def records_difference(records: pd.DataFrame, service: ServiceInfo, ref: BatchSet) -> str | None:
    """How ``records`` differ from the rows Submit sent in ``ref``: None when they are the
    same rows, or when Submit recorded no fingerprint to tell by.

    :param records: the records as read again (maybe on another worker, maybe after the file
        changed).
    """
    counts = [part.row_count for part in ref.base_parts]
    if ref.records_sha256 is None or any(count is None for count in counts):
        return None
    from airflow_provider.records.check import prepare_records
    from airflow_provider.records.encode import records_fingerprint

    try:
        prepared = prepare_records(records, service.input_parameters)
        same = records_fingerprint(prepared, [int(c or 0) for c in counts]) == ref.records_sha256
    except MrsDeployRecordsError as err:  # the rows sent were valid: these are others
        return str(err)
    return None if same else "their service inputs differ"


def check_same_records(records: pd.DataFrame, service: ServiceInfo, ref: BatchSet) -> None:
    """Refuse records that are not the rows Submit sent, when Submit fingerprinted them.

    A task given ``records=`` reads them again, maybe on another worker, maybe after the file
    changed: the table would silently pair outputs with other inputs, and a repair would
    re-score other rows.

    :raises MrsDeployRecordsError: the records differ from what was sent.
    """
    problem = records_difference(records, service, ref)
    if problem is not None:
        raise MrsDeployRecordsError(
            f"the records given are not the rows submitted in {ref.describe()} ({problem}): "
            "the file changed since Submit, or this worker reads another file at the same "
            "path. Give a location every worker reads alike (object storage), and leave it "
            "unchanged until the run is collected."
        )


#: Rows named in a message about repair batches (the first ones).
SHOWN_ROWS = 20


def refuse_gone_repairs(
    hook: MrsDeployHook,
    ref: BatchSet,
    parts: Sequence[BatchPart],
    destination: object,
    consequence: str,
) -> None:
    """Refuse a run that must read the repair batches ``parts`` again when the server no longer
    has some of them (deleted by someone, or cancelled: on this API a cancel deletes a batch).

    Asked before the run reads or sends anything, so it can say which batches are gone and
    what to do, instead of failing half-way with the bare 404 of one of them.

    :param ref: the batch set the parts belong to (it names their service).
    :param destination: the destination recording them, named in the message.
    :param consequence: what the run would have done without them, and what to do instead.
    :raises MrsDeployOutputsError: when any of them is gone.
    """
    gone = []
    for part in parts:
        try:
            hook.get_batch_progress(ref.service_name, ref.service_version, part.batch_id)
        except MrsDeployNotFoundError:
            gone.append(part)
    if not gone:
        return
    rows = sorted({row for part in gone for row in part.rows or ()})
    listed = ", ".join(str(row) for row in rows[:SHOWN_ROWS])
    raise MrsDeployOutputsError(
        f"{destination} records repair batch(es) {', '.join(part.batch_id for part in gone)} "
        f"of {ref.describe()}, which re-scored row(s) "
        f"[{listed}{', ...' if len(rows) > SHOWN_ROWS else ''}], and the server no longer has "
        f"{'it' if len(gone) == 1 else 'them'} (deleted, or cancelled: a cancel deletes a "
        f"batch). {consequence}"
    )


def new_table(service: ServiceInfo) -> OutputsTable:
    """An empty outputs table with the service's declared outputs and their types."""
    return OutputsTable(
        [p.name for p in service.output_parameters],
        output_types={p.name: p.type for p in service.output_parameters},
    )


def apply_failure_policy(
    log: TaskLogger,
    rows: int,
    failed: Sequence[tuple[int, str | None]],
    *,
    max_failed_rows: int | None,
    max_failed_ratio: float | None,
) -> None:
    """Fail the task when more rows failed than allowed; otherwise warn with the first errors.

    :param rows: rows in the table.
    :param failed: each failed row's index and message.
    """
    if not failed:
        return
    ratio = len(failed) / rows
    too_many = max_failed_rows is not None and len(failed) > max_failed_rows
    too_large = max_failed_ratio is not None and ratio > max_failed_ratio
    quoted = "; ".join(
        f"row {index}: {printable(message, 500) if message else 'no error message'}"
        for index, message in failed[:QUOTED_FAILURES]
    )
    if too_many or too_large:
        raise MrsDeployFailedRowsError(
            f"{len(failed)} of {rows} rows failed ({ratio:.1%}), more than allowed "
            f"(max_failed_rows={max_failed_rows}, max_failed_ratio={max_failed_ratio}); first "
            f"errors: {quoted}. The outputs were written and keep every failed row with its "
            "error_message."
        )
    log.warning("%d of %d rows failed; first errors: %s", len(failed), rows, quoted)


async def _decoded(content: str, where: str) -> AsyncIterator[bytes]:
    """A file that came inline in a row's result, decoded from base64.

    :param where: the row and file, named by the error when the content is not base64.
    """
    yield decode_output_file(content, where)


def _loop_running() -> bool:
    """Whether an event loop runs in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_coroutine(start: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion from synchronous code.

    A task normally runs without an event loop in its thread; when one is running there
    (an operator called from async code), the coroutine gets its own loop in a helper thread.
    Which of the two is decided before the coroutine runs, outside any ``except`` block: a
    failure of the coroutine is then reported as itself, not as raised "during handling of"
    the probe's "no running event loop".
    """
    if not _loop_running():
        return asyncio.run(start())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(start())).result()
