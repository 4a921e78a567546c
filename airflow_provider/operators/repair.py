"""Repair a collected scoring run: re-score only its failed rows and merge them back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from airflow_provider.api import MrsDeployError
from airflow_provider.api.calls import check_parallel_count
from airflow_provider.batch_set import BatchSet
from airflow_provider.exceptions import (
    MrsDeployOutputsError,
    MrsDeployRecordsError,
    MrsDeploySubmissionKilledError,
)
from airflow_provider.operators.batch_wait import BatchWaitingOperator
from airflow_provider.operators.collecting import (
    CollectedSummary,
    CollectOptions,
    Collector,
    apply_failure_policy,
    check_failure_limits,
    check_same_records,
    new_table,
    refuse_gone_repairs,
)
from airflow_provider.operators.parameters import optional_whole_number, whole_number
from airflow_provider.operators.submission import (
    StartedBatches,
    SubmissionStore,
    cancel_pushed,
    cancel_quietly,
    pushed_before,
    reusable,
    start_batches,
)
from airflow_provider.operators.submit import run_time_parallel_count
from airflow_provider.operators.templating import RecordsTemplating, is_template
from airflow_provider.outputs import OutputFormat, check_destination
from airflow_provider.outputs.collected import (
    REPAIRS_KEY,
    CollectedRun,
    failed_rows_of_table,
    read_collected_run,
    read_table,
    refuse_link,
)
from airflow_provider.outputs.progress import DEFAULT_INTERVAL
from airflow_provider.outputs.table import INPUT_PREFIX, decode_input_columns
from airflow_provider.outputs.writer import check_destination_folder
from airflow_provider.waiting.events import BatchEvent
from airflow_provider.waiting.tasks import (
    complete_from_event,
    deferral_timed_out,
)

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider.api import ServiceInfo
    from airflow_provider.hooks import MrsDeployHook

#: XCom key of the batch set an attempt started (read back by Airflow's deferral backstop).
XCOM_REPAIR_BATCH_SET = "repair_batch_set"
#: State-store entry of an attempt's batches: one per attempt, so a retry re-attaches to the
#: attempt it interrupted and never to an earlier one.
STATE_KEY_PREFIX = "mrsdeploy_repair_attempt_"


class MrsDeployRepairFailedRowsOperator(RecordsTemplating, BatchWaitingOperator):
    """Re-score the failed rows of a collected run and merge them into the same destination.

    Reads the destination's ``manifest.json`` (written by the Collect operator), re-submits
    only the rows it lists as failed, waits for them (in the triggerer when deferrable), and
    rewrites the table with their new results: their files are replaced, every other row's
    files are kept as they are, and the manifest records which batch produced each row and
    every repair attempt (see docs/operators/repair.md). Rows that still fail are tried again, up to
    ``max_attempts`` repairs in all at this destination (counted across task runs); rows that
    keep failing stay in the table with their error and are reported.

    Durable like Submit: each attempt's batches are recorded in the task instance's state store
    (Airflow 3.3+), so a retry re-attaches to them instead of re-submitting; a crash while
    merging leaves the previous manifest in the destination's journal, and the retry merges
    again. Returns the Collect summary plus ``attempts`` and ``still_failed_rows``.

    :param destination: The collected folder (any ``ObjectStoragePath``); templated.
    :param records: The records originally submitted (same source, same row order); needed
        when the table has no ``input_<name>`` columns (Collect was run without ``records``).
    :param records_format: Format of ``records`` when the file's suffix does not tell.
    :param max_attempts: Repairs allowed at this destination in all, this one included.
    :param parallel_count: ``parallelCount`` of each repair batch; templated.
    :param max_records_per_batch: Split the failed rows into batches of at most this many.
    :param deferrable: Wait in the triggerer (default: ``[operators] default_deferrable``).
    :param poll_interval: Seconds (or a ``timedelta``) between status checks while waiting.
    :param max_poll_interval: Slowest poll while deferred and far from done (seconds or a
        ``timedelta``).
    :param timeout: Seconds (or a ``timedelta``) each attempt may wait for its batches (None:
        no limit besides ``execution_timeout``).
    :param cancel_on_timeout: Cancel an attempt's batches when its wait passes the deadline.
    :param cancel_on_kill: Cancel an attempt's batches when a user kills the task.
    :param include_files: Land the repaired rows' files.
    :param max_concurrent_downloads: Rows whose files are fetched at the same time.
    :param file_listing: ``auto`` or ``always`` (see the Collect operator).
    :param progress_interval: Least seconds (or a ``timedelta``) between two progress lines
        while landing files.
    :param max_failed_rows: Fail the task when more rows than this still fail after the last
        attempt (None: no limit; they are logged).
    :param max_failed_ratio: Fail the task when a larger share of rows still fails.
    :param mrsdeploy_conn_id: Connection to the web node.
    """

    template_fields: Sequence[str] = (
        "destination",
        "records",
        "records_format",
        "mrsdeploy_conn_id",
        "parallel_count",
    )
    ui_color = "#f1d4c2"

    def __init__(
        self,
        *,
        destination: str,
        records: Any = None,
        records_format: str | None = None,
        max_attempts: int = 3,
        parallel_count: int = 10,
        max_records_per_batch: int | None = None,
        deferrable: bool | None = None,
        poll_interval: float | timedelta = 10.0,
        max_poll_interval: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
        cancel_on_timeout: bool = True,
        cancel_on_kill: bool = True,
        include_files: bool = True,
        max_concurrent_downloads: int = 8,
        file_listing: str = "auto",
        progress_interval: float | timedelta = DEFAULT_INTERVAL,
        max_failed_rows: int | None = None,
        max_failed_ratio: float | None = None,
        mrsdeploy_conn_id: str = "mrsdeploy_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        whole_number("max_attempts", max_attempts, 1)
        optional_whole_number("max_records_per_batch", max_records_per_batch, 1)
        if not is_template(parallel_count):
            check_parallel_count(parallel_count)
        self.destination = destination
        self.records = records
        self.records_format = records_format
        self.max_attempts = max_attempts
        self.parallel_count = parallel_count
        self.max_records_per_batch = max_records_per_batch
        self._init_wait(
            deferrable=deferrable,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            timeout=timeout,
            cancel_on_timeout=cancel_on_timeout,
            cancel_on_kill=cancel_on_kill,
        )
        self.options = CollectOptions(
            include_files=include_files,
            file_listing=file_listing,
            max_concurrent_downloads=max_concurrent_downloads,
            progress_interval=progress_interval,
        )
        check_failure_limits(max_failed_rows, max_failed_ratio)
        self.max_failed_rows = max_failed_rows
        self.max_failed_ratio = max_failed_ratio
        self.mrsdeploy_conn_id = mrsdeploy_conn_id
        #: The current attempt's batches while they are being started (what ``on_kill``
        #: cancels), and whether they were handed over to the wait.
        self._started: StartedBatches | None = None
        self._handed_over = False

    @cached_property
    def hook(self) -> MrsDeployHook:
        """The hook, created on first use (never while the DAG file is parsed)."""
        from airflow_provider.hooks import MrsDeployHook

        return MrsDeployHook(self.mrsdeploy_conn_id)

    # -- the attempts -------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        """Start the next attempt (or re-attach to the one a previous try started)."""
        self.destination = check_destination(self.destination)
        # Before any request: a destination that cannot be a folder fails now.
        check_destination_folder(self._destination())
        return self._next_attempt(context)

    def _next_attempt(self, context: Context) -> dict[str, Any]:
        """Re-submit the failed rows and wait; or, when none is left or the attempts are used
        up, report the outcome."""
        destination = self._destination()
        run = self._read_run(destination)
        failed = failed_rows_of_table(destination, run)
        attempt = len(run.repairs) + 1
        if not failed or attempt > self.max_attempts:
            if run.interrupted:
                # Nothing to merge, so nothing would publish a manifest again: the table and
                # files there may be those of the run that did not finish.
                raise MrsDeployOutputsError(
                    f"{destination} has no manifest: the last collect or repair into it did "
                    "not finish, so what it holds may be part of another run. Collect into it "
                    "again (then repair, if rows fail)."
                )
            return self._report(run, failed)
        self._refuse_gone_repairs(destination, run)
        base = base_of(run)
        repair_set = self._start_attempt(context, destination, run, failed, attempt, base)
        context["ti"].xcom_push(key=XCOM_REPAIR_BATCH_SET, value=repair_set.to_json())
        self._handed_over = True
        self._wait_for(repair_set, resume_kwargs={"attempt": attempt, "base": base})
        return self._merge_and_go_on(context, attempt, repair_set, base)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        attempt: int = 1,
        base: str | None = None,
    ) -> dict[str, Any]:
        """Resume after deferral: merge the attempt's rows, then start the next attempt."""
        parsed = BatchEvent.from_payload(event)
        pushed = pushed_before(context, self.task_id, XCOM_REPAIR_BATCH_SET)
        # Read once; refused only after the event was acted on.
        try:
            repair_set, unusable = parsed.whole_set(pushed), None
        except MrsDeployError as err:
            repair_set, unusable = None, err
        # First what the event says (a timeout cancels, a failure fails), on the batches the
        # trigger polled, under the service this task pushed when it can be read.
        waited = parsed.polled_set(repair_set)
        if waited is None:
            raise MrsDeployError(
                f"repair attempt {attempt} got an event without its service, and no batch set "
                f"in XCom ({XCOM_REPAIR_BATCH_SET}): {event!r}"
            )
        complete_from_event(self.hook, waited, parsed, cancel_on_timeout=self.cancel_on_timeout)
        if unusable is not None:
            raise unusable
        if repair_set is None or not all(part.replaces_rows for part in repair_set.parts):
            raise MrsDeployOutputsError(
                f"repair attempt {attempt} cannot tell which rows its batches "
                f"({', '.join(parsed.batch_ids)}) re-scored: the batch set it pushed to XCom "
                f"({XCOM_REPAIR_BATCH_SET}) before it deferred is gone. Nothing was merged; "
                "clear the task to run the repair again."
            )
        return self._merge_and_go_on(context, attempt, repair_set, base)

    def _merge_and_go_on(
        self, context: Context, attempt: int, repair_set: BatchSet, base: str | None
    ) -> dict[str, Any]:
        """Merge the attempt's rows into the destination, then start the next attempt.

        :param base: :func:`base_of` the run the attempt re-scored rows of (None when resumed
            from a deferral made before it was recorded).
        """
        destination = self._destination()
        run = self._read_run(destination)
        done = len(run.repairs)
        recorded = run.repairs[attempt - 1] if done >= attempt else None
        if base is not None and base_of(run) != base:
            # Another collect replaced the run meanwhile (a re-run of the DAG): the rows this
            # attempt re-scored are another run's, and merged by index they would put those
            # results beside this run's inputs.
            cancel_quietly(self.hook, repair_set)
            self._store(context, attempt, base).forget()
            raise MrsDeployOutputsError(
                f"{destination} changed while repair attempt {attempt} ran: it now holds the "
                f"outputs of other batches ({', '.join(run.batch_set.base_batch_ids)}), "
                "collected meanwhile. This attempt's batches were not merged; run the repair "
                "again to repair what is there now."
            )
        if recorded is not None and recorded.get("batch_ids") == list(repair_set.batch_ids):
            self.log.info("Repair attempt %d is already merged into %s", attempt, destination)
        elif done != attempt - 1:
            cancel_quietly(self.hook, repair_set)
            raise MrsDeployOutputsError(
                f"{destination} changed while repair attempt {attempt} ran: it now records "
                f"{done} repair(s), another task repaired it meanwhile. This attempt's batches "
                "were not merged; run the repair again to go on from what is there now."
            )
        else:
            self._merge(destination, run, attempt, repair_set)
        self._store(context, attempt, base or base_of(run)).forget()
        self._handed_over = False
        return self._next_attempt(context)

    def _refuse_gone_repairs(self, destination: ObjectStoragePath, run: CollectedRun) -> None:
        """Refuse, before anything is sent, to repair a destination whose recorded repair
        batches are not all on the server any more.

        A merge reads every batch the manifest records again (the table is rebuilt from
        them): without an earlier repair batch, the rows it re-scored would lose their
        results, and the merge would fail only after this attempt ran.
        """
        refuse_gone_repairs(
            self.hook,
            run.batch_set,
            run.batch_set.replacing_parts,
            destination,
            "A repair rebuilds the table from every batch it records, so it cannot merge new "
            "results here without losing those rows' repaired ones; nothing was sent and "
            f"{destination} is unchanged. Collect the run's batches into a new destination (or "
            "empty this one and collect again), then repair there.",
        )

    def _start_attempt(
        self,
        context: Context,
        destination: ObjectStoragePath,
        run: CollectedRun,
        failed: Sequence[int],
        attempt: int,
        base: str,
    ) -> BatchSet:
        """The attempt's batches: those a previous try started for the same rows when they are
        still alive, else new ones."""
        store = self._store(context, attempt, base)
        service = run.batch_set.service
        self._started = StartedBatches(service)
        previous = store.load(self.hook)
        if previous is not None:
            if _rows_of(previous) == sorted(failed) and reusable(self.hook, previous, service):
                self._started.adopt(previous.batch_ids)
                return previous
            if _rows_of(previous) != sorted(failed):
                self.log.info("Recorded repair batches are for other rows; submitting afresh")
                cancel_quietly(self.hook, previous)
        return self._submit(destination, run, failed, attempt, store)

    def _submit(
        self,
        destination: ObjectStoragePath,
        run: CollectedRun,
        failed: Sequence[int],
        attempt: int,
        store: SubmissionStore,
    ) -> BatchSet:
        from airflow_provider.operators.submit import split_records
        from airflow_provider.records.check import prepare_records
        from airflow_provider.records.encode import iter_encoded_records
        from airflow_provider.records.read import ROWS_ATTR

        parallel_count = run_time_parallel_count(self.parallel_count)
        name, version = run.batch_set.service_name, run.batch_set.service_version
        service = self.hook.get_service(name, version)
        source = self._records(destination, run, service)
        frame = source.iloc[list(failed)].reset_index(drop=True)
        frame.attrs.update(source.attrs)
        frame.attrs[ROWS_ATTR] = (
            f"rows are counted among the {len(failed)} failed rows re-submitted: row k is "
            f"table row {_quoted_rows(failed)}[k]"
        )
        prepared = prepare_records(frame, service.input_parameters)
        parts = split_records(prepared, self.max_records_per_batch)
        maps, first = [], 0
        for part in parts:
            maps.append(list(failed[first : first + part.row_count]))
            first += part.row_count
        self.log.info(
            "Repair attempt %d of %d: re-submitting %d failed row(s) of %s to %s %s as %d "
            "batch(es)",
            attempt,
            self.max_attempts,
            len(failed),
            destination,
            name,
            version,
            len(parts),
        )
        started = self._started or StartedBatches((name, version))
        repair_set = start_batches(
            self.hook,
            (name, version),
            [(partial(iter_encoded_records, part), part.row_count) for part in parts],
            parallel_count,
            store.save,
            started,
            row_maps=maps,
        )
        if started.stopped:
            started.cancel(self.hook)
            raise MrsDeploySubmissionKilledError("the task was killed while submitting")
        self.log.info("Started %s", repair_set.describe())
        return repair_set

    def _merge(
        self, destination: ObjectStoragePath, run: CollectedRun, attempt: int, repair_set: BatchSet
    ) -> CollectedSummary:
        """Rewrite the table with the attempt's results; land only the repaired rows' files."""
        combined = run.batch_set.extended(repair_set.parts)
        service = self.hook.get_service(combined.service_name, combined.service_version)
        collector = Collector(self.hook, self.log, self.options)
        read = collector.read(
            combined, new_table(service), declares_files=bool(service.output_file_names)
        )
        rows = sorted(row for part in repair_set.parts for row in part.rows or ())
        repaired = set(rows)
        still_failed = [index for index, _ in read.failed if index in repaired]
        record = {
            "attempt": attempt,
            "batch_ids": list(repair_set.batch_ids),
            "rows": rows,
            "still_failed": still_failed,
            "finished": datetime.now(UTC).isoformat(),
        }
        if run.interrupted:
            self.log.warning(
                "An earlier run into %s did not finish: landing every row's files again",
                destination,
            )
        summary = collector.write(
            combined,
            read,
            destination,
            run.output_format,
            inputs=self._inputs_to_keep(destination, run, service),
            land_rows=None if run.interrupted else repaired,
            kept_files=() if run.interrupted else [f for f in run.files if f.index not in repaired],
            manifest_extra={REPAIRS_KEY: [*run.repairs, record]},
        )
        self.log.info(
            "Repair attempt %d merged into %s: %d of %d re-submitted row(s) now succeed; "
            "%d of %d rows failed in all",
            attempt,
            summary.destination,
            len(rows) - len(still_failed),
            len(rows),
            len(summary.failed),
            summary.rows,
        )
        return summary

    def _report(self, run: CollectedRun, failed: Sequence[int]) -> dict[str, Any]:
        """The outcome once nothing is left to try: no failed row, or no attempt left."""
        destination = self._destination()
        if failed:
            self.log.warning(
                "%d row(s) still fail after %d repair attempt(s) (max_attempts=%d): %s",
                len(failed),
                len(run.repairs),
                self.max_attempts,
                _quoted_rows(failed),
            )
            messages = self._failure_messages(run, failed)
            apply_failure_policy(
                self.log,
                run.rows,
                messages,
                max_failed_rows=self.max_failed_rows,
                max_failed_ratio=self.max_failed_ratio,
            )
        else:
            self.log.info(
                "All %d rows of %s succeed (after %d repair attempt(s))",
                run.rows,
                destination,
                len(run.repairs),
            )
        return {
            "destination": str(destination),
            "table": str(destination / run.table_path),
            "manifest": str(destination / "manifest.json"),
            "rows": run.rows,
            "failed_rows": len(failed),
            "files": len(run.files),
            "attempts": len(run.repairs),
            "still_failed_rows": list(failed),
        }

    def _failure_messages(
        self, run: CollectedRun, failed: Sequence[int]
    ) -> list[tuple[int, str | None]]:
        """The failed rows with their messages from the table (for the failure policy); none
        when an unfinished run may have left another run's table."""
        if run.interrupted:
            return [(index, None) for index in failed]
        try:
            frame = read_table(self._destination(), run)
        except MrsDeployOutputsError:
            return [(index, None) for index in failed]
        messages = frame["error_message"].tolist()
        return [(index, _text(messages[index])) for index in failed]

    # -- inputs -------------------------------------------------------------------------

    def _records(
        self, destination: ObjectStoragePath, run: CollectedRun, service: ServiceInfo
    ) -> pd.DataFrame:
        """Every row's inputs: from ``records``, else from the table's input columns, each
        checked to be the rows submitted when Submit fingerprinted them."""
        if self.records is not None:
            return self._given_records(destination, run, service)
        inputs = read_table_inputs(destination, run, service)
        if inputs is None:
            raise MrsDeployRecordsError(
                f"the table at {destination} has no input_<name> columns, so the failed rows' "
                "inputs are unknown: pass records= (the source that was submitted), or collect "
                "with records= so the table keeps the inputs"
            )
        check_table_inputs(inputs, service, run, destination)
        return inputs

    def _given_records(
        self, destination: ObjectStoragePath, run: CollectedRun, service: ServiceInfo
    ) -> pd.DataFrame:
        """``records``, checked to hold the table's rows and, when Submit fingerprinted them,
        to be the rows submitted."""
        from airflow_provider.records.check import text_inputs
        from airflow_provider.records.read import load_records

        frame = load_records(
            self.records, self.records_format, text_inputs(service.input_parameters)
        )
        if len(frame) != run.rows:
            raise MrsDeployRecordsError(
                f"records hold {len(frame)} rows but the collected run at {destination} "
                f"has {run.rows}: give the records that were submitted, in the same order"
            )
        check_same_records(frame, service, run.batch_set)
        return frame

    def _inputs_to_keep(
        self, destination: ObjectStoragePath, run: CollectedRun, service: ServiceInfo
    ) -> pd.DataFrame | None:
        """The inputs the merged table keeps beside the outputs, when the table has input
        columns: ``records`` when given, else those columns, checked as for re-sending (an
        unfinished run may have left another submission's table, whose inputs must not be
        written beside this run's outputs)."""
        if self.records is not None:
            has_inputs = _input_columns(read_table(destination, run)) is not None
            return self._given_records(destination, run, service) if has_inputs else None
        inputs = read_table_inputs(destination, run, service)
        if inputs is None:
            return None
        check_table_inputs(inputs, service, run, destination)
        return inputs

    # -- plumbing -----------------------------------------------------------------------

    def _destination(self) -> ObjectStoragePath:
        from airflow.sdk import ObjectStoragePath

        # Checked again: a task resumed after deferring is built afresh from its arguments.
        return ObjectStoragePath(check_destination(self.destination))

    def _read_run(self, destination: ObjectStoragePath) -> CollectedRun:
        run = read_collected_run(destination)
        if run is None:
            raise MrsDeployOutputsError(
                f"{destination} holds no collected run (no manifest.json): run the Collect "
                "operator into it first; a repair re-scores the failed rows a collect recorded"
            )
        if run.batch_set.replacing_parts and not run.repairs:
            raise MrsDeployOutputsError(
                f"the manifest at {destination} lists repair batches but no repairs; collect "
                "into this destination again before repairing it"
            )
        refuse_link(destination / run.table_path)  # before anything is sent, records or not
        return run

    def _store(self, context: Context, attempt: int, base: str) -> SubmissionStore:
        """Where an attempt's batches are recorded for a retry to re-attach to: per attempt,
        and per run repaired (``base``), so that a retry after another collect replaced the
        run does not take the batches re-scoring the earlier run's rows for this one's."""
        return SubmissionStore(context, warn=False, key=f"{STATE_KEY_PREFIX}{attempt}_{base}")

    def resume_execution(
        self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context
    ) -> Any:
        """Resume after deferral; when Airflow's backstop ended the wait, cancel the attempt's
        batches as the deadline asks before failing."""
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except Exception as err:
            if deferral_timed_out(err) and self.cancel_on_timeout:
                cancel_pushed(context, self.task_id, XCOM_REPAIR_BATCH_SET, self.hook)
            raise

    def on_kill(self) -> None:
        """Cancel the current attempt's batches: always while they are being started (a
        partial attempt is never left running), afterwards unless ``cancel_on_kill=False``."""
        started = self._started
        if started is None or self._timeout_handled:
            return  # after a timeout, cancel_on_timeout has decided
        hook = self.hook.independent_copy()
        try:
            submitting = not self._handed_over
            started.stop(hook, submitting=submitting, cancel=submitting or self.cancel_on_kill)
        finally:
            hook.close()


def check_table_inputs(
    inputs: pd.DataFrame, service: ServiceInfo, run: CollectedRun, destination: ObjectStoragePath
) -> None:
    """Refuse a table's input columns that are not the rows the run's batches were sent.

    The manifest names the batches; the table beside it is only the same run's when that run
    finished. A collect of another submission that died after writing its table leaves that
    table under the previous run's manifest (carried by the journal): its inputs, re-sent
    for the previous run's failed rows, would score other rows and write them beside that
    run's outputs. Checked against the fingerprint Submit recorded, as ``records`` are.

    :raises MrsDeployRecordsError: the inputs differ from the rows submitted, or the run did
        not finish and no fingerprint was recorded to check them with.
    """
    batch_set = run.batch_set
    counts_known = all(part.row_count is not None for part in batch_set.base_parts)
    if batch_set.records_sha256 is None or not counts_known:
        if run.interrupted:
            raise MrsDeployRecordsError(
                f"an earlier collect into {destination} did not finish, so its table may hold "
                "another submission's inputs, and its manifest records no fingerprint of the "
                "rows submitted to check them with: pass records= (the source that was "
                "submitted, in the same order), or collect into this destination again "
                "before repairing it"
            )
        return
    try:
        check_same_records(inputs, service, batch_set)
    except MrsDeployRecordsError:
        why = (
            "an earlier collect into it did not finish and left another submission's table"
            if run.interrupted
            else "the table was changed since it was written"
        )
        raise MrsDeployRecordsError(
            f"the input columns of the table at {destination} are not the rows submitted in "
            f"{batch_set.describe()} ({why}): pass records= (the source that was submitted, "
            "in the same order), or collect into this destination again before repairing it"
        ) from None


def read_table_inputs(
    destination: ObjectStoragePath, run: CollectedRun, service: ServiceInfo
) -> pd.DataFrame | None:
    """The inputs the table at ``destination`` keeps (its ``input_<name>`` columns, without
    the prefix), as the values they were sent as; None when it has no input columns.

    Each service input is read back by its declared type (see
    :func:`~airflow_provider.outputs.table.decode_input_columns`): a vector, matrix or data
    frame from its JSON text, and, in a CSV table, a ``character`` input as the text written
    (CSV holds no types: ``007`` would read as the number 7, ``NA`` as missing). A CSV table's
    other record columns, which the service does not take, are kept as the text written too:
    they are written back beside every row, and read by type inference a zip code ``00501``
    came back as ``501`` and ``NA`` as an empty cell, in rows the repair never touched.
    """
    from airflow_provider.records.check import text_inputs

    inputs = _input_columns(read_table(destination, run))
    if inputs is None:
        return None
    if run.output_format is OutputFormat.CSV:
        taken = {p.name for p in service.input_parameters}
        as_written = [name for name in text_inputs(service.input_parameters) if name in inputs]
        as_written += [str(name) for name in inputs.columns if name not in taken]
        if as_written:
            inputs = _with_csv_text(inputs, destination / run.table_path, as_written, run.rows)
    return decode_input_columns(inputs, {p.name: p.type for p in service.input_parameters})


def _with_csv_text(
    inputs: pd.DataFrame, path: ObjectStoragePath, names: Sequence[str], rows: int
) -> pd.DataFrame:
    """``inputs`` with the columns ``names`` read again from the CSV table at ``path`` as the
    text written, every cell kept (no value is taken for missing: a service input never is).

    :raises MrsDeployOutputsError: the table no longer holds the rows just read.
    """
    import pandas as pd

    columns = [INPUT_PREFIX + name for name in names]
    refuse_link(path)
    with path.open("rb") as handle:
        text = pd.read_csv(
            handle,
            usecols=["index", *columns],
            dtype=dict.fromkeys(columns, str),
            na_filter=False,
        )
    if text["index"].tolist() != list(range(rows)):
        raise MrsDeployOutputsError(
            f"the table {path} changed while it was read; run the repair again"
        )
    kept = inputs.copy()
    kept.attrs.update(inputs.attrs)
    for name, column in zip(names, columns, strict=True):
        kept[name] = pd.Series(text[column].tolist(), index=kept.index, dtype=object)
    return kept


def _input_columns(frame: pd.DataFrame) -> pd.DataFrame | None:
    """A table's input columns without their prefix, or None when it has none."""
    names = [str(c) for c in frame.columns if str(c).startswith(INPUT_PREFIX)]
    if not names:
        return None
    inputs = frame[names].rename(columns=lambda c: str(c)[len(INPUT_PREFIX) :])
    inputs.attrs.update(frame.attrs)
    return inputs


def _rows_of(batch_set: BatchSet) -> list[int]:
    return sorted(row for part in batch_set.parts for row in part.rows or ())


def _quoted_rows(rows: Sequence[int], shown: int = 20) -> str:
    listed = ", ".join(str(row) for row in rows[:shown])
    return f"[{listed}{', ...' if len(rows) > shown else ''}]"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def base_of(run: CollectedRun) -> str:
    """What identifies the run a repair attempt re-scores rows of: its service and the batches
    collected (not the repairs), as a short digest fit for a key."""
    batch_set = run.batch_set
    identity = [batch_set.service_name, batch_set.service_version, *batch_set.base_batch_ids]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
