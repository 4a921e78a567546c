"""Land a finished batch in storage: the outputs table, every row's files, and a manifest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset

from airflow_provider.api import MrsDeployConfigurationError, MrsDeployError
from airflow_provider.api.identifiers import shown
from airflow_provider.batch_set import BatchPart, BatchSet, to_batch_set
from airflow_provider.exceptions import MrsDeployFailedRowsError
from airflow_provider.operators.collecting import (
    CollectOptions,
    Collector,
    apply_failure_policy,
    check_failure_limits,
    check_same_records,
    new_table,
    refuse_gone_repairs,
)
from airflow_provider.operators.templating import RecordsTemplating, is_template
from airflow_provider.outputs import OutputFormat, check_destination
from airflow_provider.outputs.collected import REPAIRS_KEY, read_collected_run
from airflow_provider.outputs.progress import DEFAULT_INTERVAL
from airflow_provider.outputs.writer import check_destination_folder

__all__ = ["MrsDeployCollectBatchOperator", "MrsDeployFailedRowsError", "parse_output_format"]

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider.hooks import MrsDeployHook


class MrsDeployCollectBatchOperator(RecordsTemplating):
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
    :param progress_interval: Least seconds (or a ``timedelta``) between two progress lines
        while listing and landing files.
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
        progress_interval: float | timedelta = DEFAULT_INTERVAL,
        **kwargs: Any,
    ) -> None:
        self.asset = Asset(asset) if isinstance(asset, str) else asset
        if self.asset is not None:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), self.asset]
        super().__init__(**kwargs)
        # Checked now, while the DAG is parsed (the same rules as the repair's).
        options = CollectOptions(
            include_files, file_listing, max_concurrent_downloads, progress_interval
        )
        check_failure_limits(max_failed_rows, max_failed_ratio)
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
        self.file_listing = options.file_listing
        self.progress_interval = options.progress_interval
        self._ref: BatchSet | None = None

    @cached_property
    def hook(self) -> MrsDeployHook:
        """The hook, created on first use (never while the DAG file is parsed)."""
        from airflow_provider.hooks import MrsDeployHook

        return MrsDeployHook(self.mrsdeploy_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        """Fetch the results once, land files, table and manifest, then apply the row policy."""
        from airflow.sdk import ObjectStoragePath

        output_format = parse_output_format(self.output_format)
        self.destination = check_destination(self.destination)
        destination = ObjectStoragePath(self.destination)
        # Before any request: a destination that cannot be a folder fails now, not after
        # every result was read.
        check_destination_folder(destination)
        ref = to_batch_set(self.batch_id, self.service_name, self.service_version)
        ref, repairs = self._with_recorded_repairs(ref, destination)
        self._ref = ref
        service = self.hook.get_service(ref.service_name, ref.service_version)
        table = new_table(service)
        collector = Collector(
            self.hook,
            self.log,
            CollectOptions(
                include_files=self.include_files,
                file_listing=self.file_listing,
                max_concurrent_downloads=self.max_concurrent_downloads,
                progress_interval=self.progress_interval,
            ),
        )
        read = collector.read(ref, table, declares_files=bool(service.output_file_names))
        inputs = None
        if self.records is not None:
            from airflow_provider.records.check import text_inputs  # pandas: at run time only
            from airflow_provider.records.read import load_records

            inputs = load_records(
                self.records, self.records_format, text_inputs(service.input_parameters)
            )
            check_same_records(inputs, service, ref)
        summary = collector.write(
            ref,
            read,
            destination,
            output_format,
            inputs=inputs,
            manifest_extra={REPAIRS_KEY: list(repairs)} if repairs else None,
        )
        self.log.info(
            "Collected %s into %s: %d rows (%d failed), %d files",
            ref.describe(),
            summary.destination,
            summary.rows,
            len(summary.failed),
            summary.files,
        )
        apply_failure_policy(
            self.log,
            summary.rows,
            summary.failed,
            max_failed_rows=self.max_failed_rows,
            max_failed_ratio=self.max_failed_ratio,
        )
        result = summary.to_json()
        self._announce(context, result)
        return result

    def _with_recorded_repairs(
        self, ref: BatchSet, destination: ObjectStoragePath
    ) -> tuple[BatchSet, tuple[dict[str, Any], ...]]:
        """``ref``, followed by the repairs the destination records for these same batches.

        Collecting again into a destination whose failed rows were repaired (the collect task
        cleared and re-run) keeps the repaired rows: their newer results are folded in rather
        than the original failures written back.

        :raises MrsDeployOutputsError: a recorded repair batch is gone from the server (see
            :meth:`_refuse_gone_repairs`); nothing was read or written.
        """
        if ref.replacing_parts:
            return ref, ()
        try:
            run = read_collected_run(destination)
        except MrsDeployError:
            return ref, ()  # not ours to read: the writer decides what it may replace
        if (
            run is None
            or not run.repairs
            or run.batch_set.base_batch_ids != ref.batch_ids
            or run.batch_set.service != ref.service
        ):
            return ref, ()
        replacing = run.batch_set.replacing_parts
        self._refuse_gone_repairs(ref, replacing, destination)
        self.log.info(
            "The destination records %d repair(s) of these batches; keeping the rows they "
            "re-scored (batches %s)",
            len(run.repairs),
            ", ".join(part.batch_id for part in replacing),
        )
        return ref.extended(replacing), run.repairs

    def _refuse_gone_repairs(
        self, ref: BatchSet, replacing: Sequence[BatchPart], destination: ObjectStoragePath
    ) -> None:
        """Refuse to collect again when a repair batch the destination records is gone.

        The repaired rows' results live only in their repair batches (and in the table this
        run would replace): without one of them, collecting again would write those rows'
        original failures back over their repaired results, silently undoing the repair. So
        nothing is written, and the destination keeps the repaired table.
        """
        refuse_gone_repairs(
            self.hook,
            ref,
            replacing,
            destination,
            "Collecting again would write those rows' original results back over their "
            f"repaired ones, so nothing was written: {destination} still holds the table and "
            "files as the repair left them. To collect these batches again, collect into a new "
            "destination (or empty this one), then run the repair there to re-score the rows "
            "that fail.",
        )

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
