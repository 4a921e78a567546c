"""The one small JSON event a batch trigger yields, built and validated in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from airflow_provider.api import MrsDeployError
from airflow_provider.batch_set import BatchSet
from airflow_provider.waiting.progress import BatchOutcome, BatchProgress


class BatchEventStatus(str, Enum):
    """Why a wait ended."""

    COMPLETE = "complete"
    FAILED = "failed"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True)
class BatchEvent:
    """A parsed trigger event: a status, the batches it is about, counts and a message."""

    status: BatchEventStatus
    batch_ids: tuple[str, ...]
    completed: int
    total: int
    message: str
    #: The batch set waited on, in events of triggers made by development builds before the
    #: trigger held only what it polls (see :meth:`BatchSet.for_polling`); still read. The
    #: events sent now name the service and the batch ids: the whole set is the one the task
    #: pushed to XCom, never a copy that could be taken for it.
    batch_set: BatchSet | None = None
    #: The service name and version of the batches (None in events of earlier releases).
    service: tuple[str, str] | None = None

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON for ``TriggerEvent``: ids, counts and a message, never results."""
        payload: dict[str, Any] = {
            "status": self.status.value,
            "batch_ids": list(self.batch_ids),
            "completed": self.completed,
            "total": self.total,
            "message": self.message,
        }
        if self.service is not None:
            payload["service_name"], payload["service_version"] = self.service
        if self.batch_set is not None:
            payload["batch_set"] = self.batch_set.to_json()
        return payload

    def polled_set(self, own: BatchSet | None = None) -> BatchSet | None:
        """The batches the trigger polled (this event's ids), under the service of the task's
        own set (``own``, when it names these ids), else of the event's set, else the service
        the event names; None when none is known.

        What a timeout cancels: never another service than the task's own when it is known.
        """
        if own is not None and own.batch_ids == self.batch_ids:
            return own.for_polling()
        if self.batch_set is not None:
            return self.batch_set
        if self.service is None:
            return None
        return BatchSet.of_ids(self.service, self.batch_ids)

    def whole_set(self, pushed: Any) -> BatchSet | None:
        """The whole batch set this event is about, for the task that resumes.

        A trigger holds only the ids it polls (:meth:`BatchSet.for_polling`), so the rows each
        batch holds come from the set the task pushed to XCom before it deferred. Without one,
        the event's own set (sent whole by triggers of earlier releases), or None.

        :param pushed: the set's JSON form as pushed, or None.
        :raises MrsDeployError: the pushed set names other batches than the event.
        """
        if pushed is None:
            return self.batch_set
        whole = BatchSet.from_json(pushed)
        if whole.batch_ids != self.batch_ids:
            raise MrsDeployError(
                f"the batch set this task pushed before it deferred ({', '.join(whole.batch_ids)})"
                f" is not the one its trigger waited for ({', '.join(self.batch_ids)}): its XCom "
                "was replaced meanwhile. Clear the task to run it again."
            )
        return whole

    @classmethod
    def from_progress(cls, batch_set: BatchSet, progress: BatchProgress) -> BatchEvent:
        """The event for a batch set that reached a terminal outcome."""
        if progress.outcome is BatchOutcome.RUNNING:
            raise ValueError("a running batch has no terminal event")
        if progress.outcome is BatchOutcome.COMPLETE:
            status, message = BatchEventStatus.COMPLETE, f"complete: {progress.describe()}"
        else:
            status = BatchEventStatus.FAILED
            message = "batch execution failed on the server: " + ", ".join(
                progress.failed_batch_ids
            )
        return cls(
            status,
            batch_set.batch_ids,
            progress.completed,
            progress.total,
            message,
            None,
            batch_set.service,
        )

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any] | None) -> BatchEvent:
        """Validate an event handed back to ``execute_complete``; anything odd raises."""
        if not isinstance(payload, Mapping):
            raise MrsDeployError(f"expected a batch trigger event, got {payload!r}")
        raw_status = payload.get("status")
        try:
            status = BatchEventStatus(raw_status)
        except ValueError:
            raise MrsDeployError(
                f"batch trigger event has a missing or unknown status {raw_status!r}"
            ) from None
        batch_ids = payload.get("batch_ids")
        if not isinstance(batch_ids, list) or not all(isinstance(b, str) for b in batch_ids):
            raise MrsDeployError(f"batch trigger event has no valid batch_ids: {payload!r}")
        raw_set = payload.get("batch_set")
        batch_set = None if raw_set is None else BatchSet.from_json(raw_set)
        if batch_set is not None and batch_set.batch_ids != tuple(batch_ids):
            raise MrsDeployError(f"batch trigger event names two different batch sets: {payload!r}")
        name, version = payload.get("service_name"), payload.get("service_version")
        # Not refused when unusable: the event's status must still be acted on (a timeout
        # cancels), under the service the task knows.
        usable = isinstance(name, str) and name and isinstance(version, str) and version
        try:
            completed, total = int(payload.get("completed") or 0), int(payload.get("total") or 0)
        except (TypeError, ValueError):
            raise MrsDeployError(
                f"batch trigger event has counts that are no numbers: {payload!r}"
            ) from None
        return cls(
            status=status,
            batch_ids=tuple(batch_ids),
            completed=completed,
            total=total,
            message=str(payload.get("message") or ""),
            batch_set=batch_set,
            service=(str(name), str(version)) if usable else None,
        )
