"""Durable submission: remember started batches per task instance so a retry re-attaches.

Airflow clears a task's XComs at the start of every try, so XCom cannot carry a batch id across
a retry. Airflow 3.3 gives each task instance a state store (``context["task_state_store"]``),
keyed on dag, task, run and map index (not on the try number). The Submit operator records the
batches there as soon as each is created; a retry that finds them still alive and not failed
waits on them instead of starting a second copy. Older Airflow has no store: submission still
works, with a warning that a retry starts new batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_provider.api import MrsDeployError, MrsDeployNotFoundError
from airflow_provider.api.identifiers import batch_id_problem, shown
from airflow_provider.batch_set import VERSION, BatchSet, is_batch_set_json
from airflow_provider.exceptions import MrsDeployBatchSetError, MrsDeploySubmissionKilledError
from airflow_provider.waiting.progress import BatchOutcome, evaluate_batches

log = logging.getLogger(__name__)

STATE_KEY = "mrsdeploy_submission"


def read_recorded(value: Any) -> BatchSet | None:
    """A batch set recorded in the state store, or None when nothing usable is there.

    Reads what this provider records (the batch set) and what earlier releases recorded
    (service, ids and planned count, without rows).
    """
    if is_batch_set_json(value):
        try:
            return BatchSet.from_json(value)
        except MrsDeployError:
            return None
    if not isinstance(value, dict):
        return None
    try:
        ids = [str(b) for b in value["batch_ids"]]
        service = (str(value["service_name"]), str(value["service_version"]))
        return BatchSet.of_ids(service, ids, int(value["planned_batches"]))
    except (KeyError, TypeError, ValueError):
        return None


def _unreadable_because(value: Any) -> str:
    """Why :func:`read_recorded` could not read ``value``, for the log."""
    if is_batch_set_json(value):
        try:
            BatchSet.from_json(value)
        except MrsDeployError as err:
            return str(err)
    return f"not a recorded submission: {shown(value, 300)}"


def named_batches(value: Any) -> BatchSet | None:
    """The service and batch ids an entry :func:`read_recorded` cannot read still names, if
    any: enough to cancel what an earlier try started instead of leaving it running.

    Only a string service name and version and ids that are usable batch ids are taken (under
    ``batches[].batch_id``, or ``batch_ids``), so a corrupt entry cannot steer a request.
    """
    if not isinstance(value, Mapping):
        return None
    service = (value.get("service_name"), value.get("service_version"))
    if not all(isinstance(part, str) and part for part in service):
        return None
    batches, plain_ids = value.get("batches"), value.get("batch_ids")
    candidates: list[Any] = []
    if isinstance(batches, list):
        candidates = [b.get("batch_id") if isinstance(b, Mapping) else None for b in batches]
    elif isinstance(plain_ids, list):
        candidates = plain_ids
    ids = [b for b in candidates if isinstance(b, str) and batch_id_problem(b) is None]
    if not ids:
        return None
    return BatchSet.of_ids((str(service[0]), str(service[1])), ids)


class SubmissionStore:
    """The task instance's state store, or nothing on Airflow versions without one.

    :param key: the entry this submission is recorded under (a task that submits several
        times, like a repair per attempt, uses one key per submission).
    """

    def __init__(self, context: Any, *, warn: bool = True, key: str = STATE_KEY) -> None:
        self._key = key
        self._store = context.get("task_state_store") if hasattr(context, "get") else None
        if self._store is None and warn:
            log.warning(
                "This Airflow has no task_state_store (Airflow < 3.3): a retry of this task "
                "cannot re-attach to batches it already started and will start new ones"
            )

    @property
    def available(self) -> bool:
        """Whether submissions survive a retry."""
        return self._store is not None

    def load(self, hook: Any) -> BatchSet | None:
        """The batch set a previous try recorded, if any.

        An entry this provider cannot read is not silently dropped: one written by a newer
        provider (a batch set of a later version, during a rolling upgrade) fails the task,
        leaving its batches running for a worker that can read it; any other is logged with its
        text, the batches it still names are cancelled, and None is returned (submit afresh).

        :param hook: cancels the batches an unreadable entry names.
        :raises MrsDeployBatchSetError: the entry is a batch set of another version.
        """
        if self._store is None:
            return None
        value = self._store.get(self._key)
        recorded = read_recorded(value)
        if recorded is not None or value is None:
            return recorded
        if is_batch_set_json(value) and value.get("version") != VERSION:
            raise MrsDeployBatchSetError(
                f"an earlier try recorded its batches as a batch set of version "
                f"{shown(value.get('version'))}, which this provider (version {VERSION}) cannot "
                "read: upgrade the provider on every worker and triggerer, then retry. The "
                "recorded batches are left running, and a retry that can read them re-attaches"
            )
        orphans = named_batches(value)
        log.warning(
            "The task's state store holds an entry this provider cannot read under %s (%s); %s",
            self._key,
            _unreadable_because(value),
            "cancelling the batches it names and submitting afresh"
            if orphans is not None
            else "it names no batch to cancel; submitting afresh",
        )
        if orphans is not None:
            cancel_quietly(hook, orphans)
        return None

    def save(self, batch_set: BatchSet) -> None:
        """Record the batch set (called after every batch is created)."""
        if self._store is not None:
            self._store.set(self._key, batch_set.to_json())

    def forget(self) -> None:
        """Drop the record, so the next run of this task instance submits afresh."""
        if self._store is not None:
            self._store.delete(self._key)


def reusable(
    hook: Any,
    submission: BatchSet,
    service: tuple[str, str],
    records_differ: Callable[[BatchSet], str | None] | None = None,
) -> bool:
    """Whether a recorded submission can be waited on instead of submitting again.

    It must be for the same service, whole, sent the records this try would send, and every
    batch must still exist and not have failed. Otherwise whatever is left of it is cancelled
    so nothing leaks.

    :param records_differ: given a whole recorded submission, why the records this try would
        send are not the rows it sent (None when they are, or cannot be told).
    """
    if submission.service != service:
        # A retry whose templated name or version rendered differently: the earlier try's
        # batches belong to their own service, which is where they must be cancelled.
        log.info(
            "Recorded %s is for another service than %s %s; cancelling it and submitting afresh",
            submission.describe(),
            *service,
        )
        cancel_quietly(hook, submission)
        return False
    difference = records_differ(submission) if submission.is_whole and records_differ else None
    if difference is not None:
        # The source changed between tries (a file rewritten by an upstream task run again, a
        # query over rows that changed): waiting on the earlier batches would score old rows.
        log.warning(
            "Recorded %s was sent other records than this try reads (%s); cancelling it and "
            "submitting the records as they are now",
            submission.describe(),
            difference,
        )
    elif submission.is_whole:
        try:
            statuses = [
                hook.get_batch_progress(submission.service_name, submission.service_version, b)
                for b in submission.batch_ids
            ]
        except MrsDeployNotFoundError:
            log.info("A recorded batch no longer exists on the server; submitting afresh")
        else:
            progress = evaluate_batches(submission.batch_ids, statuses)
            if progress.outcome is not BatchOutcome.FAILED:
                log.info(
                    "Re-attaching to %s started by an earlier try (%s)",
                    submission.describe(),
                    progress.describe(),
                )
                return True
            log.info("Recorded batches failed on the server; submitting afresh")
    cancel_quietly(hook, submission)
    return False


def cancel_quietly(hook: Any, ref: BatchSet) -> None:
    """Cancel batches while already handling a failure: log problems, never raise them."""
    for batch_id in ref.batch_ids:
        try:
            hook.cancel_batch(ref.service_name, ref.service_version, batch_id)
            log.info("Cancelled batch %s", batch_id)
        except Exception as exc:  # the original failure is what the user must see
            log.warning("Could not cancel batch %s: %s", batch_id, exc)


def pushed_before(context: Any, task_id: str, key: str) -> Any:
    """What this task instance pushed to XCom under ``key`` before it deferred, or None.

    Its own map index is asked for: without one, Airflow returns the values of every mapped
    instance of the task, as a list.
    """
    ti = context["ti"]
    map_index = getattr(ti, "map_index", None)
    return ti.xcom_pull(
        task_ids=task_id, key=key, map_indexes=-1 if map_index is None else map_index
    )


def cancel_pushed(context: Any, task_id: str, key: str, hook: Any) -> None:
    """Cancel the batch set a task pushed to XCom under ``key`` (when Airflow's deferral
    backstop ended its wait: the trigger never reported, so the task cancels as the deadline
    asks; a batch found finished meanwhile is kept). Problems are logged, never raised: the
    timeout is what the user must see."""
    from airflow_provider.waiting.tasks import cancel_unfinished

    pushed = pushed_before(context, task_id, key)
    if not pushed:
        return
    try:
        batch_set = BatchSet.from_json(pushed)
    except MrsDeployBatchSetError as err:
        log.warning("Could not cancel the batches: the set pushed to XCom is unusable: %s", err)
        return
    log.error("The wait passed its deadline: cancelling the batches")
    cancel_unfinished(hook, batch_set, quiet=True)


class StartedBatches:
    """The batches a submission has started so far, shared with the operator's ``on_kill``.

    Airflow calls ``on_kill`` from a signal handler, in the thread that is submitting, between
    two of its steps: there is no lock (the handler would wait forever for its own thread), and
    every step is safe to interleave. The submission checks :attr:`stopped` after each batch it
    starts, so a batch whose start was under way when the kill came is cancelled too.

    :param service: the service name and version.
    """

    def __init__(self, service: tuple[str, str]) -> None:
        self.service = service
        self.ids: list[str] = []
        self.cancelled: set[str] = set()
        #: The task was killed: start nothing more, and do not go on to wait.
        self.stopped = False
        #: ... and the kill came before the batches were handed over (a partial submission).
        self.stopped_while_submitting = False

    def adopt(self, batch_ids: Sequence[str]) -> None:
        """Track batches started elsewhere (an earlier try's, re-attached to)."""
        self.ids.extend(batch_id for batch_id in batch_ids if batch_id not in self.ids)

    def stop(self, hook: Any, *, submitting: bool, cancel: bool) -> None:
        """Start no further batch (``on_kill``), and cancel those started when asked.

        :param hook: the hook to cancel with.
        :param submitting: the kill came before the batches were handed over.
        :param cancel: cancel the batches known so far.
        """
        self.stopped = True
        self.stopped_while_submitting = self.stopped_while_submitting or submitting
        if cancel:
            self.cancel(hook)

    def cancel(self, hook: Any) -> None:
        """Cancel every started batch not cancelled yet; problems are logged, never raised."""
        for batch_id in list(self.ids):
            if batch_id in self.cancelled:
                continue
            self.cancelled.add(batch_id)
            cancel_quietly(hook, BatchSet.of_ids(self.service, (batch_id,)))


def start_batches(
    hook: Any,
    service: tuple[str, str],
    bodies: Sequence[tuple[Callable[[], Any], int]],
    parallel_count: int,
    record: Callable[[BatchSet], None],
    started: StartedBatches | None = None,
    row_maps: Sequence[Sequence[int]] | None = None,
) -> BatchSet:
    """Start one batch per body, recording the set after each; on any failure (or a kill)
    cancel what was started.

    :param hook: the hook.
    :param service: the service name and version.
    :param bodies: per batch, in input order: its body supplier and its number of rows.
    :param parallel_count: ``parallelCount`` of each batch.
    :param record: called with the batch set so far after each batch starts.
    :param started: where the started batches are tracked (shared with ``on_kill``).
    :param row_maps: per batch, the input row of each of its records, when the batches re-score
        chosen rows (a repair) instead of holding the input's rows in order.
    """
    name, version = service
    started = started if started is not None else StartedBatches(service)
    counts: list[tuple[str, int]] = []

    def batch_set() -> BatchSet:
        if row_maps is None:
            return BatchSet.of_row_counts(service, counts, len(bodies))
        mapped = [(batch_id, row_maps[i]) for i, (batch_id, _) in enumerate(counts)]
        return BatchSet.of_row_maps(service, mapped, len(bodies))

    try:
        for body, rows in bodies:
            if started.stopped:
                raise MrsDeploySubmissionKilledError(
                    f"the task was killed after starting {len(started.ids)} of {len(bodies)} "
                    "batches; no further batch was started"
                )
            batch_id = hook.start_batch(name, version, body, parallel_count=parallel_count)
            started.ids.append(batch_id)
            counts.append((batch_id, rows))
            record(batch_set())
        if started.stopped:  # killed while the last start was under way
            raise MrsDeploySubmissionKilledError("the task was killed while submitting")
    except BaseException:
        if started.ids:
            log.error("Submission failed part-way; cancelling the batches it started")
            started.cancel(hook)
        raise
    return batch_set()
