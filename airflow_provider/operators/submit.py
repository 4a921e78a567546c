"""Create and start a batch execution from a table of records."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider.batch_ref import (
    XCOM_BATCH_IDS,
    XCOM_SERVICE_NAME,
    XCOM_SERVICE_VERSION,
    BatchRef,
)
from airflow_provider.compat import default_deferrable
from airflow_provider.events import BatchEvent
from airflow_provider.records import encode_records, load_records, prepare_records
from airflow_provider.triggers.batch import MrsDeployBatchTrigger
from airflow_provider.waiting import complete_from_event, compute_deadline, wait_until_done

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider.hooks import MrsDeployHook


class MrsDeploySubmitBatchOperator(BaseOperator):
    """Send records to a published service as one batch execution and start it.

    The records are checked against the service's input definitions before anything is sent:
    a missing input column fails with the expected and found columns, extra columns are dropped
    (and logged), and values JSON cannot carry (NaN, inf, missing, wrong type) fail naming the
    row and column. The batch id is the return value; the service name, version and the list of
    ids are pushed to XCom too, before any wait, so a sensor or collect task can find them.

    :param service_name: Name of the published service.
    :param service_version: Version of the published service.
    :param records: A pandas DataFrame, a list of dicts, or a path/URL of a CSV, TSV, Parquet or
        JSON Lines file (any ``ObjectStoragePath`` scheme).
    :param records_format: File format when the suffix does not tell (csv, tsv, parquet, jsonl).
    :param parallel_count: Rows the server runs at once for this batch (the server may cap it).
    :param mrsdeploy_conn_id: Connection to the web node.
    :param wait_for_completion: Wait in this task until the batch is complete.
    :param deferrable: Wait in the triggerer instead of the worker (implies waiting); defaults
        to ``[operators] default_deferrable``.
    :param poll_interval: Seconds between status checks while waiting.
    :param max_poll_interval: Slowest poll while deferred and far from done.
    :param timeout: Seconds to wait for completion before giving up (None: no limit besides
        ``execution_timeout``).
    :param cancel_on_timeout: Cancel the batch when the wait passes its deadline.
    :param cancel_on_kill: Cancel the batch when a user kills the task.
    """

    template_fields: Sequence[str] = (
        "service_name",
        "service_version",
        "records",
        "records_format",
        "mrsdeploy_conn_id",
    )
    ui_color = "#c9e4ca"

    def __init__(
        self,
        *,
        service_name: str,
        service_version: str,
        records: Any,
        records_format: str | None = None,
        parallel_count: int = 10,
        mrsdeploy_conn_id: str = "mrsdeploy_default",
        wait_for_completion: bool = False,
        deferrable: bool | None = None,
        poll_interval: float = 10.0,
        max_poll_interval: float | None = None,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.service_name = service_name
        self.service_version = service_version
        self.records = records
        self.records_format = records_format
        self.parallel_count = parallel_count
        self.mrsdeploy_conn_id = mrsdeploy_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = timeout
        self.cancel_on_timeout = cancel_on_timeout
        self.cancel_on_kill = cancel_on_kill
        self._ref: BatchRef | None = None

    @cached_property
    def hook(self) -> MrsDeployHook:
        """The hook, created on first use (never while the DAG file is parsed)."""
        from airflow_provider.hooks import MrsDeployHook

        return MrsDeployHook(self.mrsdeploy_conn_id)

    def execute(self, context: Context) -> str:
        """Validate and send the records, record the batch id, then optionally wait."""
        service = self.hook.get_service(self.service_name, self.service_version)
        frame = load_records(self.records, self.records_format)
        prepared = prepare_records(frame, service.input_parameters)
        if prepared.dropped_columns:
            self.log.info(
                "Dropping columns the service does not take: %s", list(prepared.dropped_columns)
            )
        body = encode_records(prepared)
        self.log.info(
            "Submitting %d rows (%d bytes) to %s %s with parallelCount=%d",
            prepared.row_count,
            len(body),
            self.service_name,
            self.service_version,
            self.parallel_count,
        )
        batch_id = self.hook.start_batch(
            self.service_name, self.service_version, body, parallel_count=self.parallel_count
        )
        ref = BatchRef(self.service_name, self.service_version, (batch_id,))
        self._ref = ref
        ti = context["ti"]
        ti.xcom_push(key=XCOM_SERVICE_NAME, value=self.service_name)
        ti.xcom_push(key=XCOM_SERVICE_VERSION, value=self.service_version)
        ti.xcom_push(key=XCOM_BATCH_IDS, value=list(ref.batch_ids))
        self.log.info("Started %s (%d rows)", ref.describe(), prepared.row_count)
        deadline = compute_deadline(time.time(), self.timeout, self.execution_timeout)
        if self.deferrable:
            self.defer(
                trigger=MrsDeployBatchTrigger(
                    batch_ids=list(ref.batch_ids),
                    service_name=self.service_name,
                    service_version=self.service_version,
                    mrsdeploy_conn_id=self.mrsdeploy_conn_id,
                    poll_interval=self.poll_interval,
                    max_poll_interval=self.max_poll_interval,
                    deadline=deadline,
                    cancel_on_kill=self.cancel_on_kill,
                ),
                method_name="execute_complete",
            )
        if self.wait_for_completion:
            wait_until_done(
                self.hook,
                ref,
                poll_interval=self.poll_interval,
                deadline=deadline,
                cancel_on_timeout=self.cancel_on_timeout,
            )
        return batch_id

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after deferral: act on the trigger's event and return the batch id."""
        parsed = BatchEvent.from_payload(event)
        ref = BatchRef(self.service_name, self.service_version, parsed.batch_ids)
        complete_from_event(self.hook, ref, parsed, cancel_on_timeout=self.cancel_on_timeout)
        return ref.batch_ids[0]

    def on_kill(self) -> None:
        """Cancel the started batch when the task is killed while waiting on a worker."""
        if self.cancel_on_kill and self._ref is not None:
            from airflow_provider.waiting import cancel_batches

            cancel_batches(self.hook, self._ref)
