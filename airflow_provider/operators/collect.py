"""Land a finished batch in storage: the outputs table, every row's files, and a manifest."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import Asset, BaseOperator

from airflow_provider.api import (
    BatchStatus,
    ExecutionResult,
    MrsDeployConfigurationError,
    MrsDeployError,
)
from airflow_provider.api.identifiers import shown
from airflow_provider.api.models import decode_output_file
from airflow_provider.batch_set import BatchPart, BatchSet, to_batch_set
from airflow_provider.exceptions import MrsDeployFailedRowsError
from airflow_provider.outputs import (
    OutputFormat,
    OutputsTable,
    OutputWriter,
    PlannedFile,
    ProgressLog,
    RenderedTable,
    WrittenFile,
    build_manifest,
    check_destination,
    plan_row_files,
)
from airflow_provider.outputs.progress import DEFAULT_INTERVAL
from airflow_provider.progress import BatchOutcome, evaluate_batches
from airflow_provider.safe_text import printable
from airflow_provider.templating import is_template
from airflow_provider.waiting import raise_if_failed

if TYPE_CHECKING:
    from airflow.sdk import Context

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


class MrsDeployCollectBatchOperator(BaseOperator):
    """Write a complete batch's per-row outputs and files to storage, idempotently.

    Under ``destination`` (any ``ObjectStoragePath``: local, s3://, gs://, abfs://...) it writes
    ``outputs.<format>`` with one row per input index (index, success, error_message, every
    output parameter, optionally the inputs as ``input_<name>``), ``files/<index>/<name>`` for
    every file a row produced, and ``manifest.json`` last. Re-running for the same destination
    replaces what earlier collects wrote there and nothing else: a path it must write that
    holds someone else's file fails the task before anything is written (see
    docs/outputs.md). Returns a small dict: destination, table and manifest paths, row,
    failure and file counts.

    :param batch_id: The batch set to collect, usually ``submit.output`` (it names its service
        and which rows each batch holds); or a batch execution id, or a list of ids in
        submission order, with ``service_name`` and ``service_version``.
    :param destination: Folder to write to; templated, e.g. ``s3://lake/scores/{{ ds }}/``.
    :param service_name: Service name, needed with plain ids (checked against a batch set).
    :param service_version: Service version, needed with plain ids (checked against a set).
    :param output_format: ``parquet`` (default), ``csv`` or ``jsonl``.
    :param include_files: Download every row's files.
    :param records: The submitted records, to write the inputs beside the outputs (optional).
    :param records_format: Format of ``records`` when it is a file whose suffix does not tell.
    :param max_concurrent_downloads: Rows whose files are fetched at the same time (on one
        event loop).
    :param max_failed_rows: Fail the task when more rows than this failed (None: no limit).
    :param max_failed_ratio: Fail the task when a larger share of rows failed (None: no limit).
    :param mrsdeploy_conn_id: Connection to the web node.
    :param file_listing: ``auto`` (default) takes a row's file names from its result's
        ``changedFiles`` and lists only rows that name none while the service declares output
        files; ``always`` asks the server for every row's file list.
    :param progress_interval: Least seconds between two progress lines while listing and
        landing files.
    :param asset: An Airflow Asset (or its name) this task updates: added to ``outlets``, and its
        event carries the summary (destination, manifest, counts) so DAGs scheduled on the asset
        know where the outputs landed.
    """

    template_fields: Sequence[str] = (
        "batch_id",
        "destination",
        "service_name",
        "service_version",
        "output_format",
        "records",
        "records_format",
        "mrsdeploy_conn_id",
    )
    ui_color = "#f4e3c1"

    def __init__(
        self,
        *,
        batch_id: Any,
        destination: str,
        service_name: str | None = None,
        service_version: str | None = None,
        output_format: str = OutputFormat.PARQUET.value,
        include_files: bool = True,
        records: Any = None,
        records_format: str | None = None,
        max_concurrent_downloads: int = 8,
        max_failed_rows: int | None = None,
        max_failed_ratio: float | None = None,
        mrsdeploy_conn_id: str = "mrsdeploy_default",
        asset: Asset | str | None = None,
        file_listing: str = "auto",
        progress_interval: float = DEFAULT_INTERVAL,
        **kwargs: Any,
    ) -> None:
        self.asset = Asset(asset) if isinstance(asset, str) else asset
        if self.asset is not None:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), self.asset]
        super().__init__(**kwargs)
        if max_concurrent_downloads < 1:
            raise ValueError("max_concurrent_downloads must be at least 1")
        if not is_template(output_format):
            # A wrong format fails when the DAG is parsed, not after the batch has run; a
            # template is checked when rendered, before anything is fetched.
            parse_output_format(output_format)
        self.batch_id = batch_id
        self.destination = destination
        self.service_name = service_name
        self.service_version = service_version
        self.output_format = output_format
        self.include_files = include_files
        self.records = records
        self.records_format = records_format
        self.max_concurrent_downloads = max_concurrent_downloads
        self.max_failed_rows = max_failed_rows
        self.max_failed_ratio = max_failed_ratio
        self.mrsdeploy_conn_id = mrsdeploy_conn_id
        if file_listing not in ("auto", "always"):
            raise ValueError("file_listing must be 'auto' or 'always'")
        self.file_listing = file_listing
        if not progress_interval > 0:
            raise ValueError("progress_interval must be a positive number of seconds")
        self.progress_interval = progress_interval
        self._ref: BatchSet | None = None
        #: Which batch produced which rows of the table (filled while reading results).
        self._produced: list[BatchPart] = []
        self._declares_files = True

    @cached_property
    def hook(self) -> MrsDeployHook:
        """The hook, created on first use (never while the DAG file is parsed)."""
        from airflow_provider.hooks import MrsDeployHook

        return MrsDeployHook(self.mrsdeploy_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        """Fetch the results once, land files, table and manifest, then apply the row policy."""
        from airflow.sdk import ObjectStoragePath

        output_format = parse_output_format(self.output_format)
        check_destination(self.destination)
        ref = to_batch_set(self.batch_id, self.service_name, self.service_version)
        self._ref = ref
        service = self.hook.get_service(ref.service_name, ref.service_version)
        self._declares_files = bool(service.output_file_names)
        table = OutputsTable(
            [p.name for p in service.output_parameters],
            output_types={p.name: p.type for p in service.output_parameters},
        )
        self._produced = []
        file_rows, failed = self._read_results(ref, table)
        inputs = None
        if self.records is not None:
            from airflow_provider.records import load_records  # pandas: at run time only

            inputs = load_records(self.records, self.records_format)
        # Typed and converted now: a value the format cannot hold fails before any download.
        rendered = RenderedTable(table.build(inputs), output_format)
        if table.renamed_outputs:
            self.log.warning(
                "Outputs named like the table's own columns are written as: %s",
                ", ".join(f"{k} -> {v}" for k, v in table.renamed_outputs.items()),
            )
        writer = OutputWriter(ObjectStoragePath(self.destination), logger=self.log)
        files = _run_coroutine(lambda: self._aland(ref, writer, rendered.name, file_rows))
        table_path = writer.write_table(rendered)
        writer.remove_leftovers([table_path, *(f.path for f in files)])
        manifest_path = writer.finish(
            build_manifest(
                batch_ids=ref.batch_ids,
                batches=[part.to_json() for part in self._produced],
                service_name=ref.service_name,
                service_version=ref.service_version,
                table_path=table_path,
                output_format=output_format,
                rows=len(table),
                failed_rows=len(failed),
                files=files,
                renamed_outputs=table.renamed_outputs,
            )
        )
        self.log.info(
            "Collected %s into %s: %d rows (%d failed), %d files",
            ref.describe(),
            writer.destination,
            len(table),
            len(failed),
            len(files),
        )
        self._apply_failure_policy(len(table), failed)
        summary = {
            "destination": str(writer.destination),
            "table": str(writer.destination / table_path),
            "manifest": manifest_path,
            "rows": len(table),
            "failed_rows": len(failed),
            "files": len(files),
        }
        self._announce(context, summary)
        return summary

    def _announce(self, context: Context, summary: dict[str, Any]) -> None:
        """Attach where the outputs landed to the asset event downstream DAGs receive."""
        outlet_events = context.get("outlet_events")
        if self.asset is not None and outlet_events is not None:
            outlet_events[self.asset].extra = dict(summary)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Lineage: the batches in, the destination folder out."""
        from airflow_provider.lineage import (
            batch_dataset_names,
            location_namespace_and_name,
            operator_lineage,
        )

        base_url = self.hook.base_url
        ref = self._ref
        return operator_lineage(
            inputs=batch_dataset_names(base_url, ref) if ref else [],
            outputs=[location_namespace_and_name(str(self.destination))],
            base_url=base_url,
            service_name=ref.service_name if ref else str(self.service_name),
            service_version=ref.service_version if ref else str(self.service_version),
        )

    def _read_results(
        self, ref: BatchSet, table: OutputsTable
    ) -> tuple[list[tuple[RowLocation, ExecutionResult]], list[tuple[int, str | None]]]:
        """Fetch every batch's results once, in submission order, into ``table``.

        A batch's parsed results are dropped once its rows are in the table: only the rows
        that have files to land are kept (with their results), and the index and message of
        each failed row. Nothing is written before every batch is known to be complete.

        :returns: the rows with files to land, and the failed rows' indexes and messages.
        """
        states: list[BatchStatus] = []
        incomplete: list[str] = []
        file_rows: list[tuple[RowLocation, ExecutionResult]] = []
        failed: list[tuple[int, str | None]] = []
        for part in ref.parts:
            status = self.hook.get_batch_status(
                ref.service_name, ref.service_version, part.batch_id, show_partial_results=False
            )
            states.append(dataclasses.replace(status, results=()))
            problem = self._take_rows(part, status, table, file_rows, failed)
            if problem is not None:
                incomplete.append(problem)
            # Dropped before the next batch is fetched, so two batches' results never coexist.
            del status
        progress = evaluate_batches(ref.batch_ids, states)
        raise_if_failed(ref, progress)
        if progress.outcome is not BatchOutcome.COMPLETE:
            raise MrsDeployError(
                f"{ref.describe()} is not complete yet ({progress.describe()}); wait for it "
                "with MrsDeployBatchSensor before collecting"
            )
        if incomplete:
            raise MrsDeployError(incomplete[0])
        return file_rows, failed

    def _take_rows(
        self,
        part: BatchPart,
        status: BatchStatus,
        table: OutputsTable,
        file_rows: list[tuple[RowLocation, ExecutionResult]],
        failed: list[tuple[int, str | None]],
    ) -> str | None:
        """Add a complete batch's rows to the table and note its failed rows and rows with
        files; return why its results cannot be used, or None (a batch that is not complete
        adds nothing: the caller reports it).

        The batch set says where the batch's rows belong (``first_row``) and how many it holds:
        an answer that disagrees is refused rather than written at the wrong rows.
        """
        batch_id = part.batch_id
        if not status.is_terminal or status.is_failed:
            return None
        if len(status.results) != status.total_item_count:
            return (
                f"batch {batch_id} reports {status.total_item_count} rows but returned "
                f"{len(status.results)} results; refusing to write an incomplete table"
            )
        if part.row_count is not None and part.row_count != len(status.results):
            return (
                f"batch {batch_id} returned {len(status.results)} results, but {part.row_count} "
                "rows were submitted in it; refusing to write a table whose rows would not "
                "match the input"
            )
        offset = len(table)
        if part.first_row is not None and part.first_row != offset:
            return (
                f"batch {batch_id} holds the rows from {part.first_row} on, but the batches "
                f"before it hold {offset} rows: the batch set is not in input order"
            )
        self._produced.append(BatchPart(batch_id, offset, len(status.results)))
        table.add(status.results)
        for batch_index, result in enumerate(status.results):
            if not result.success:
                failed.append((offset + batch_index, result.error_message))
            if self._has_files(result):
                file_rows.append((RowLocation(batch_id, batch_index, offset + batch_index), result))
        return None

    def _has_files(self, result: ExecutionResult) -> bool:
        """Whether the row may have files to land: names to fetch or list, or inline files."""
        if not self.include_files:
            return False
        return self._file_names_from_result(result) != () or bool(result.output_files)

    async def _aland(
        self,
        ref: BatchSet,
        writer: OutputWriter,
        table_name: str,
        rows: Sequence[tuple[RowLocation, ExecutionResult]],
    ) -> list[WrittenFile]:
        """Plan every row's files, claim the destination, then land the files.

        Every path is known before :meth:`OutputWriter.begin`, so a destination holding
        someone else's file at one of them is refused before anything is written. Listing and
        downloads run ``max_concurrent_downloads`` at a time on one event loop with the hook's
        async client: a request costs a fraction of the CPU a blocking one does, and no thread
        waits on another for the interpreter lock.
        """
        try:
            plans = await self._aplan(ref, rows)
            await writer.abegin([table_name, *(f.path for plan in plans for f in plan.files)])
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
            "rows' file names listed", len(to_list), self.log, interval=self.progress_interval
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
            inline = {} if row_names else dict(result.output_files)
            files = plan_row_files(location.global_index, row_names or list(inline))
            plans.append(RowPlan(location, files, inline))
        return plans

    async def _aland_files(
        self, ref: BatchSet, writer: OutputWriter, plans: Sequence[RowPlan]
    ) -> list[WrittenFile]:
        total = sum(len(plan.files) for plan in plans)
        progress = ProgressLog("files landed", total, self.log, interval=self.progress_interval)
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
            for _ in range(min(self.max_concurrent_downloads, len(items)))
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
        if self.file_listing == "auto":
            if result.changed_files:
                return result.changed_files
            if not self._declares_files:
                return ()
        return None

    def _apply_failure_policy(self, rows: int, failed: Sequence[tuple[int, str | None]]) -> None:
        if not failed:
            return
        ratio = len(failed) / rows
        too_many = self.max_failed_rows is not None and len(failed) > self.max_failed_rows
        too_large = self.max_failed_ratio is not None and ratio > self.max_failed_ratio
        quoted = "; ".join(
            f"row {index}: {printable(message, 500) if message else 'no error message'}"
            for index, message in failed[:QUOTED_FAILURES]
        )
        if too_many or too_large:
            raise MrsDeployFailedRowsError(
                f"{len(failed)} of {rows} rows failed ({ratio:.1%}), more than allowed "
                f"(max_failed_rows={self.max_failed_rows}, max_failed_ratio="
                f"{self.max_failed_ratio}); first errors: {quoted}. The outputs were written "
                "and keep every failed row with its error_message."
            )
        self.log.warning("%d of %d rows failed; first errors: %s", len(failed), rows, quoted)


def parse_output_format(value: object) -> OutputFormat:
    """The table format ``value`` names (any case).

    :raises MrsDeployConfigurationError: for anything else, listing the formats.
    """
    if isinstance(value, (str, OutputFormat)):
        try:
            return OutputFormat.parse(value)
        except MrsDeployError:
            pass
    choices = ", ".join(f.value for f in OutputFormat)
    raise MrsDeployConfigurationError(
        f"output_format {shown(value)} is not a table format; use one of {choices}"
    )


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


def _run_coroutine(start: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
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
