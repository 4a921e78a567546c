"""Create and start a batch execution from a table of records."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from airflow_provider.api.calls import check_parallel_count
from airflow_provider.batch_set import XCOM_BATCH_SET, BatchSet
from airflow_provider.exceptions import MrsDeployRecordsError
from airflow_provider.links import XCOM_STATUS_URL, MrsDeployBatchLink, batch_status_url
from airflow_provider.operators.batch_wait import BatchWaitingOperator
from airflow_provider.operators.parameters import flag, optional_whole_number, whole_number
from airflow_provider.operators.submission import (
    MrsDeploySubmissionKilledError,
    StartedBatches,
    SubmissionStore,
    cancel_pushed,
    pushed_before,
    reusable,
    start_batches,
)
from airflow_provider.operators.templating import RecordsTemplating, is_template
from airflow_provider.records.sql import DEFAULT_SQL_CHUNK_ROWS, read_sql_records
from airflow_provider.waiting.events import BatchEvent
from airflow_provider.waiting.tasks import (
    complete_from_event,
    deferral_timed_out,
)

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context

    from airflow_provider.api import ServiceInfo
    from airflow_provider.hooks import MrsDeployHook
    from airflow_provider.records.check import PreparedRecords


class MrsDeploySubmitBatchOperator(RecordsTemplating, BatchWaitingOperator):
    """Send records to a published service as one batch execution and start it.

    The records are checked against the service's input definitions before anything is sent:
    a missing input column fails with the expected and found columns, extra columns are dropped
    (and logged), and values JSON cannot carry (NaN, inf, missing, wrong type) fail naming the
    row and column. The return value is the batch set (:class:`~airflow_provider.batch_set.
    BatchSet`, as JSON): the service and the batches with the rows each holds, which a sensor or
    collect task given ``batch_id=submit.output`` needs and nothing else. It is also pushed to
    XCom (key ``batch_set``) before any wait.

    On Airflow 3.3+ the started batches are also recorded in the task instance's state store:
    a retry re-attaches to them when they still exist, have not failed and were sent the records
    the retry reads (else they are cancelled and the records submitted afresh), instead of
    starting a second copy, and a failure part-way through submitting cancels what was started.

    :param service_name: Name of the published service.
    :param service_version: Version of the published service.
    :param records: A pandas DataFrame, a list of dicts, or a path/URL of a CSV, TSV, Parquet or
        JSON Lines file (any ``ObjectStoragePath`` scheme). A path is templated; rows given
        inline are sent as given, never rendered.
    :param records_format: File format when the suffix does not tell (csv, tsv, parquet, jsonl).
    :param records_sql: A query whose result set is the records, instead of ``records``.
    :param sql_conn_id: Database connection (any provider with a ``DbApiHook``) for
        ``records_sql``.
    :param sql_chunk_rows: Rows fetched per chunk when reading ``records_sql``.
    :param parallel_count: Rows the server runs at once for this batch (the server may cap it).
    :param max_records_per_batch: Split larger inputs into several batches of at most this many
        rows (None: one batch). The batch set then lists them in input order.
    :param mrsdeploy_conn_id: Connection to the web node.
    :param wait_for_completion: Wait in this task until the batch is complete.
    :param deferrable: Wait in the triggerer instead of the worker (implies waiting); defaults
        to ``[operators] default_deferrable``.
    :param poll_interval: Seconds (or a ``timedelta``) between status checks while waiting.
    :param max_poll_interval: Slowest poll while deferred and far from done (seconds or a
        ``timedelta``).
    :param timeout: Seconds (or a ``timedelta``) to wait for completion before giving up
        (None: no limit besides ``execution_timeout``).
    :param cancel_on_timeout: Cancel the batch when the wait passes its deadline.
    :param cancel_on_kill: Cancel the batch when a user kills the task.
    """

    template_fields: Sequence[str] = (
        "service_name",
        "service_version",
        "records",
        "records_format",
        "records_sql",
        "sql_conn_id",
        "mrsdeploy_conn_id",
        "parallel_count",
    )
    ui_color = "#c9e4ca"
    operator_extra_links = (MrsDeployBatchLink(),)

    def __init__(
        self,
        *,
        service_name: str,
        service_version: str,
        records: Any = None,
        records_format: str | None = None,
        records_sql: str | None = None,
        sql_conn_id: str | None = None,
        sql_chunk_rows: int = DEFAULT_SQL_CHUNK_ROWS,
        parallel_count: int = 10,
        max_records_per_batch: int | None = None,
        mrsdeploy_conn_id: str = "mrsdeploy_default",
        wait_for_completion: bool = False,
        deferrable: bool | None = None,
        poll_interval: float | timedelta = 10.0,
        max_poll_interval: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
        cancel_on_timeout: bool = True,
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.service_name = service_name
        self.service_version = service_version
        if (records is None) == (records_sql is None):
            raise ValueError("pass exactly one of records and records_sql")
        if records_sql is not None and not sql_conn_id:
            raise ValueError("records_sql needs sql_conn_id, the database connection to run it on")
        self.records = records
        self.records_format = records_format
        self.records_sql = records_sql
        self.sql_conn_id = sql_conn_id
        self.sql_chunk_rows = whole_number("sql_chunk_rows", sql_chunk_rows, 1)
        optional_whole_number("max_records_per_batch", max_records_per_batch, 1)
        if not is_template(parallel_count):
            # Checked now, while the DAG is parsed; a template is checked once rendered,
            # before anything is read or sent (run_time_parallel_count).
            check_parallel_count(parallel_count)
        self.parallel_count = parallel_count
        self.max_records_per_batch = max_records_per_batch
        self.mrsdeploy_conn_id = mrsdeploy_conn_id
        self.wait_for_completion = flag("wait_for_completion", wait_for_completion)
        self._init_wait(
            deferrable=deferrable,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            timeout=timeout,
            cancel_on_timeout=cancel_on_timeout,
            cancel_on_kill=cancel_on_kill,
        )
        self._ref: BatchSet | None = None
        #: The service and records read to compare with an earlier try's, for _submit.
        self._loaded: tuple[ServiceInfo, pd.DataFrame] | None = None
        #: The batches started so far while submitting (what ``on_kill`` cancels then).
        self._started: StartedBatches | None = None

    @cached_property
    def hook(self) -> MrsDeployHook:
        """The hook, created on first use (never while the DAG file is parsed)."""
        from airflow_provider.hooks import MrsDeployHook

        return MrsDeployHook(self.mrsdeploy_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate and send the records (or re-attach on a retry), record the ids, then wait."""
        store = SubmissionStore(context)
        service = (self.service_name, self.service_version)
        self._started = StartedBatches(service)
        previous = store.load(self.hook)
        reattached = previous is not None and reusable(
            self.hook, previous, service, self._records_differ
        )
        if reattached:
            self._loaded = None  # read only to compare: not held while the batches are awaited
        ref = previous if previous is not None and reattached else self._submit(store)
        self._started.adopt(ref.batch_ids)
        self._ref = ref
        self._stop_if_killed(reattached)
        ti = context["ti"]
        # Pushed before any wait: Airflow's deferral backstop reads it back (resume_execution).
        ti.xcom_push(key=XCOM_BATCH_SET, value=ref.to_json())
        ti.xcom_push(
            key=XCOM_STATUS_URL,
            value=batch_status_url(
                self.hook.base_url, self.service_name, self.service_version, ref.batch_ids[0]
            ),
        )
        self._stop_if_killed(reattached)
        self._wait_for(ref, in_worker=self.wait_for_completion)
        store.forget()
        return ref.to_json()

    def _submit(self, store: SubmissionStore) -> BatchSet:
        """Check the records against the service and start one batch per chunk of rows."""
        # pandas and pyarrow are imported here, when the task runs, never when the DAG is parsed.
        from airflow_provider.records.check import check_has_rows, prepare_records
        from airflow_provider.records.encode import (
            DigestingBody,
            combine_digests,
            iter_encoded_records,
        )

        parallel_count = run_time_parallel_count(self.parallel_count)
        service, frame = self._loaded or self._load_records()
        self._loaded = None
        check_has_rows(frame)  # before any batch is started: an empty one is refused anyway
        prepared = prepare_records(frame, service.input_parameters)
        if prepared.dropped_columns:
            self.log.info(
                "Dropping columns the service does not take: %s", list(prepared.dropped_columns)
            )
        parts = split_records(prepared, self.max_records_per_batch)
        self.log.info(
            "Submitting %d rows to %s %s as %d batch(es) with parallelCount=%d",
            prepared.row_count,
            self.service_name,
            self.service_version,
            len(parts),
            parallel_count,
        )
        bodies = [DigestingBody(partial(iter_encoded_records, part)) for part in parts]
        batch_set = start_batches(
            self.hook,
            (self.service_name, self.service_version),
            [(body, part.row_count) for body, part in zip(bodies, parts, strict=True)],
            parallel_count,
            store.save,
            self._started,
        )
        digests = [body.digest for body in bodies]
        if all(digest is not None for digest in digests):
            # What a later task given the records again checks it sees (possibly on another
            # worker, which may read another file at the same path).
            fingerprint = combine_digests([str(digest) for digest in digests])
            batch_set = dataclasses.replace(batch_set, records_sha256=fingerprint)
            store.save(batch_set)
        self.log.info("Started %s", batch_set.describe())
        return batch_set

    def _load_records(self) -> tuple[ServiceInfo, pd.DataFrame]:
        """The service's definition, then the records as a DataFrame.

        The service comes first: a CSV's reader must know which columns are character inputs
        to keep them as written (a zip code 007 would become the number 7).
        """
        from airflow_provider.records.check import text_inputs

        service = self.hook.get_service(self.service_name, self.service_version)
        return service, self._read_records(text_inputs(service.input_parameters))

    def _records_differ(self, recorded: BatchSet) -> str | None:
        """Why the records this try reads are not the rows an earlier try sent (None when
        they are, or cannot be told). What was read is kept for a submission afresh.

        A source that cannot be read again (a file removed once submitted) does not stop the
        retry from waiting on batches that were sent whole: that is logged, and the earlier
        batches are kept.
        """
        if recorded.records_sha256 is None:
            return None
        from airflow_provider.operators.collecting import records_difference

        try:
            self._loaded = self._load_records()
        except (MrsDeployRecordsError, OSError) as err:
            self.log.warning(
                "Could not read the records again to check that the earlier try sent the same "
                "rows (%s); keeping its batches",
                err,
            )
            return None
        service, frame = self._loaded
        return records_difference(frame, service, recorded)

    def _read_records(self, text_columns: Sequence[str] = ()) -> Any:
        """The records as a DataFrame, from ``records`` or by running ``records_sql``.

        :param text_columns: columns a CSV or TSV file keeps as text (the ``character``
            inputs); other sources carry their own types.
        """
        if self.records_sql is not None:
            self.log.info("Reading records with records_sql on connection %s", self.sql_conn_id)
            return read_sql_records(str(self.sql_conn_id), self.records_sql, self.sql_chunk_rows)
        from airflow_provider.records.read import load_records

        return load_records(self.records, self.records_format, text_columns)

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after deferral: act on the trigger's event and return the batch set."""
        parsed = BatchEvent.from_payload(event)
        # The task's own service, which the event names too.
        waited = parsed.batch_set or BatchSet.of_ids(
            (self.service_name, self.service_version), parsed.batch_ids
        )
        self._ref = waited  # what lineage reports: this instance is new after deferral
        # First what the event says: a timeout cancels, a failure fails, whatever XCom holds.
        complete_from_event(self.hook, waited, parsed, cancel_on_timeout=self.cancel_on_timeout)
        ref = parsed.whole_set(pushed_before(context, self.task_id, XCOM_BATCH_SET))
        if ref is None:
            self.log.warning(
                "The batch set this task pushed before it deferred is gone from XCom: returning "
                "the batch ids only (Collect numbers their rows in batch order)"
            )
        ref = ref or waited
        self._ref = ref
        SubmissionStore(context, warn=False).forget()  # execute() already warned
        return ref.to_json()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Lineage: the records file (or query) in, the started batches out."""
        from airflow_provider.lineage import (
            batch_dataset_names,
            location_namespace_and_name,
            operator_lineage,
        )

        inputs = []
        if isinstance(self.records, str):
            inputs.append(location_namespace_and_name(self.records))
        base_url = self.hook.base_url
        outputs = batch_dataset_names(base_url, self._ref) if self._ref else []
        return operator_lineage(
            inputs=inputs,
            outputs=outputs,
            base_url=base_url,
            service_name=self.service_name,
            service_version=self.service_version,
            sql=self.records_sql,
        )

    def resume_execution(
        self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context
    ) -> Any:
        """Resume after deferral; when Airflow's backstop ended the deferral (the trigger never
        reported), cancel the batches as the deadline asks before failing."""
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except Exception as err:
            if deferral_timed_out(err) and self.cancel_on_timeout:
                cancel_pushed(context, self.task_id, XCOM_BATCH_SET, self.hook)
            raise

    def _stop_if_killed(self, reattached: bool) -> None:
        """Raise when ``on_kill`` ran meanwhile: Airflow lets ``execute`` go on after its
        signal handler, and a killed task must neither hand over nor wait for its batches.

        A submission killed part-way is cancelled whole; batches handed over (or re-attached
        to) are cancelled unless ``cancel_on_kill=False``.
        """
        started = self._started
        if started is None or not started.stopped:
            return
        if (started.stopped_while_submitting and not reattached) or self.cancel_on_kill:
            started.cancel(self.hook)
            outcome = "its batches were cancelled"
        else:
            outcome = "its batches were left running (cancel_on_kill=False)"
        raise MrsDeploySubmissionKilledError(f"the task was killed while submitting; {outcome}")

    def on_kill(self) -> None:
        """When the task is killed: while submitting, start no further batch and cancel those
        started (a partial submission is never left running); once the batches are handed
        over, cancel them unless ``cancel_on_kill=False``.

        Airflow calls this from a signal handler that may interrupt a call of the hook, so it
        works through an independent copy of the hook.
        """
        started = self._started
        if started is None or self._timeout_handled:
            return  # after a timeout, cancel_on_timeout has decided
        hook = self.hook.independent_copy()
        try:
            submitting = self._ref is None
            started.stop(hook, submitting=submitting, cancel=submitting or self.cancel_on_kill)
        finally:
            hook.close()


def split_records(prepared: PreparedRecords, max_rows: int | None) -> list[PreparedRecords]:
    """Cut the records into consecutive parts of at most ``max_rows`` rows (input order kept)."""
    from airflow_provider.records.check import cut_records

    total = prepared.row_count
    if max_rows is None or total <= max_rows:
        return [prepared]
    return cut_records(prepared, [min(max_rows, total - s) for s in range(0, total, max_rows)])


def run_time_parallel_count(value: object) -> int:
    """``parallel_count`` once templates are rendered: a rendered template is text, so text
    holding a whole number counts as that number; then the one rule applies.

    :param value: the rendered ``parallel_count``.
    """
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return check_parallel_count(value)
