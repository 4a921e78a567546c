"""The batch set: the one value tasks hand each other about a scoring run.

A Submit task returns it (its XCom ``return_value``), keeps it in the task's state store for
retries, pushes it to XCom before it waits (read back when it resumes after deferral), and
gives its trigger the part the trigger polls; a Sensor or Collect given ``submit.output``
receives it whole. It says which service scored the rows and which batch
executions hold which rows of the input, so no task has to ask another for the service or
recompute where a batch's rows belong.

Its JSON form (``to_json``) is plain and versioned::

    {"kind": "mrsdeploy_batch_set", "version": 1,
     "service_name": "mtService", "service_version": "v1.0.0",
     "batches": [{"batch_id": "...", "first_row": 0, "row_count": 16},
                 {"batch_id": "...", "first_row": 16, "row_count": 16}],
     "planned_batches": 2}

A set named by plain ids (``batch_id="<id>"`` with ``service_name`` and ``service_version``)
does not know its rows: ``first_row`` and ``row_count`` are then None, and Collect numbers the
rows in batch order as the server returns them.

A batch that re-scores chosen rows (a repair of failed rows) holds rows that are not
consecutive: its entry carries a row map, ``"rows": [3, 17, 25]``, the input row of each of its
results in order. Such a batch replaces those rows' results from the batches before it in the
set; the batches without a row map hold the input's rows in order.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider.api.identifiers import batch_id_problem, shown
from airflow_provider.exceptions import MrsDeployBatchSetError

KIND = "mrsdeploy_batch_set"
VERSION = 1

#: XCom key under which a Submit task pushes its batch set before any wait (its return value
#: is pushed only when it ends).
XCOM_BATCH_SET = "batch_set"


@dataclass(frozen=True)
class BatchPart:
    """One batch execution of a set, and the input rows it holds.

    :param batch_id: the batch execution id.
    :param first_row: 0-based position of its first row in the submitted records, or None.
    :param row_count: how many rows it holds, or None.
    :param rows: the row map of a batch that re-scores chosen rows: the input row of each of
        its results, in order (None: it holds ``row_count`` rows from ``first_row`` on).
    """

    batch_id: str
    first_row: int | None = None
    row_count: int | None = None
    rows: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.rows is None:
            return
        if len(set(self.rows)) != len(self.rows):
            raise MrsDeployBatchSetError(f"batch {self.batch_id} names one row twice in its rows")
        if self.row_count is None:
            object.__setattr__(self, "row_count", len(self.rows))
        elif self.row_count != len(self.rows):
            raise MrsDeployBatchSetError(
                f"batch {self.batch_id} holds {self.row_count} rows but maps {len(self.rows)}"
            )

    @property
    def replaces_rows(self) -> bool:
        """It re-scores chosen rows (it has a row map) instead of holding consecutive ones."""
        return self.rows is not None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        value: dict[str, Any] = {
            "batch_id": self.batch_id,
            "first_row": self.first_row,
            "row_count": self.row_count,
        }
        if self.rows is not None:
            value["rows"] = list(self.rows)
        return value


@dataclass(frozen=True)
class BatchSet:
    """A service and the batch executions, in input order, that hold one submission's rows.

    :param service_name: the published service's name.
    :param service_version: its version.
    :param parts: the batches, in input order.
    :param planned_batches: how many batches the submission meant to start (a crash may have
        stopped it part-way); the number of parts by default.
    :param records_sha256: the fingerprint of the rows sent (SHA-256 over each batch body's
        SHA-256), when Submit sent them: a task given the records again (Collect's or a
        repair's ``records=``, possibly read on another worker) checks it saw the same rows.
    """

    service_name: str
    service_version: str
    parts: tuple[BatchPart, ...]
    planned_batches: int | None = None
    records_sha256: str | None = None

    def __post_init__(self) -> None:
        if not self.parts:
            raise MrsDeployBatchSetError("a batch set holds at least one batch")
        for part in self.parts:
            problem = batch_id_problem(part.batch_id)
            if problem is not None:
                raise MrsDeployBatchSetError(
                    f"batch id {shown(part.batch_id)} is not a usable batch id: {problem}"
                )
        if self.planned_batches is None:
            object.__setattr__(self, "planned_batches", len(self.parts))

    @classmethod
    def of_ids(
        cls, service: tuple[str, str], batch_ids: Iterable[str], planned: int | None = None
    ) -> BatchSet:
        """A set known only by its ids (rows unknown).

        :param service: the service name and version.
        :param batch_ids: the ids, in input order.
        :param planned: batches planned, when more than were started.
        :raises MrsDeployBatchSetError: ``batch_ids`` is one string (its characters would be
            taken for ids: ``"b1"`` for the batches ``b`` and ``1``).
        """
        if isinstance(batch_ids, (str, bytes)):
            raise MrsDeployBatchSetError(
                f"batch ids must be a list of ids, got the single text {shown(batch_ids)}; "
                f"pass [{shown(batch_ids)}]"
            )
        parts = tuple(BatchPart(batch_id) for batch_id in batch_ids)
        return cls(service[0], service[1], parts, planned)

    @classmethod
    def of_row_counts(
        cls, service: tuple[str, str], batches: Sequence[tuple[str, int]], planned: int
    ) -> BatchSet:
        """A set whose batches hold consecutive rows: ``(batch_id, row_count)`` in input order.

        :param service: the service name and version.
        :param batches: each batch's id and number of rows.
        :param planned: batches planned.
        """
        parts, first = [], 0
        for batch_id, count in batches:
            parts.append(BatchPart(batch_id, first, count))
            first += count
        return cls(service[0], service[1], tuple(parts), planned)

    @classmethod
    def of_row_maps(
        cls, service: tuple[str, str], batches: Sequence[tuple[str, Sequence[int]]], planned: int
    ) -> BatchSet:
        """A set of batches that re-score chosen rows: ``(batch_id, rows)`` in order.

        :param service: the service name and version.
        :param batches: each batch's id and the input row of each of its results.
        :param planned: batches planned.
        """
        parts = tuple(BatchPart(batch_id, rows=tuple(rows)) for batch_id, rows in batches)
        return cls(service[0], service[1], parts, planned)

    def extended(self, parts: Iterable[BatchPart]) -> BatchSet:
        """This set followed by ``parts`` (batches that replace some of its rows)."""
        added = tuple(parts)
        planned = (self.planned_batches or len(self.parts)) + len(added)
        return BatchSet(
            self.service_name,
            self.service_version,
            self.parts + added,
            planned,
            self.records_sha256,
        )

    def for_polling(self) -> BatchSet:
        """What a wait needs of this set: the service and the batch ids, in order.

        A trigger is given only this: Airflow stores a trigger's arguments in a text column
        (64 KB on MySQL), which a repair's row maps (a number per failed row) would overflow.
        The task that resumes takes the whole set from its XCom (see
        :meth:`~airflow_provider.waiting.events.BatchEvent.whole_set`).
        """
        parts = tuple(BatchPart(part.batch_id) for part in self.parts)
        return BatchSet(self.service_name, self.service_version, parts, self.planned_batches)

    @property
    def service(self) -> tuple[str, str]:
        """The service's name and version."""
        return (self.service_name, self.service_version)

    @property
    def base_parts(self) -> tuple[BatchPart, ...]:
        """The batches that hold the input's rows in order (without a row map)."""
        return tuple(part for part in self.parts if not part.replaces_rows)

    @property
    def replacing_parts(self) -> tuple[BatchPart, ...]:
        """The batches that re-score chosen rows, in the order they replace each other."""
        return tuple(part for part in self.parts if part.replaces_rows)

    @property
    def batch_ids(self) -> tuple[str, ...]:
        """The ids, in input order."""
        return tuple(part.batch_id for part in self.parts)

    @property
    def base_batch_ids(self) -> tuple[str, ...]:
        """The ids of the batches that hold the input's rows in order."""
        return tuple(part.batch_id for part in self.base_parts)

    @property
    def is_whole(self) -> bool:
        """Every planned batch was started."""
        return len(self.parts) == self.planned_batches

    @property
    def row_count(self) -> int | None:
        """Rows of the input in the whole set, when every batch's count is known (batches that
        replace rows add none)."""
        counts = [part.row_count for part in self.base_parts]
        return None if any(c is None for c in counts) else sum(c or 0 for c in counts)

    def describe(self) -> str:
        """For log lines and errors."""
        return f"{self.service_name} {self.service_version} batch {', '.join(self.batch_ids)}"

    def to_json(self) -> dict[str, Any]:
        """The plain, versioned JSON form (XCom, state store, trigger kwargs, events)."""
        value = {
            "kind": KIND,
            "version": VERSION,
            "service_name": self.service_name,
            "service_version": self.service_version,
            "batches": [part.to_json() for part in self.parts],
            "planned_batches": self.planned_batches,
        }
        if self.records_sha256 is not None:
            value["records_sha256"] = self.records_sha256
        return value

    @classmethod
    def from_json(cls, value: Any) -> BatchSet:
        """Read :meth:`to_json`'s form back.

        :raises MrsDeployBatchSetError: naming what is wrong.
        """
        if not is_batch_set_json(value):
            raise MrsDeployBatchSetError(f"not a batch set: {shown(value)}")
        if value.get("version") != VERSION:
            raise MrsDeployBatchSetError(
                f"batch set version {shown(value.get('version'))} is not supported (this "
                f"provider reads version {VERSION}); upgrade the provider on every worker"
            )
        service_name, service_version = value.get("service_name"), value.get("service_version")
        batches = value.get("batches")
        if not isinstance(service_name, str) or not isinstance(service_version, str):
            raise MrsDeployBatchSetError(f"batch set without a service: {shown(value)}")
        if not isinstance(batches, list):
            raise MrsDeployBatchSetError(f"batch set without batches: {shown(value)}")
        planned = value.get("planned_batches")
        if planned is not None and (not _count(planned) or planned < len(batches)):
            raise MrsDeployBatchSetError(f"batch set with a bad planned_batches: {shown(value)}")
        parts = tuple(_part(item) for item in batches)
        fingerprint = value.get("records_sha256")
        if fingerprint is not None and not (
            isinstance(fingerprint, str) and re.fullmatch("[0-9a-f]{64}", fingerprint)
        ):
            raise MrsDeployBatchSetError(f"batch set with a bad records_sha256: {shown(value)}")
        return cls(service_name, service_version, parts, planned, fingerprint)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _part(item: Any) -> BatchPart:
    if not isinstance(item, Mapping) or not isinstance(item.get("batch_id"), str):
        raise MrsDeployBatchSetError(f"batch set entry without a batch_id: {shown(item)}")
    first, count = item.get("first_row"), item.get("row_count")
    for name, number in (("first_row", first), ("row_count", count)):
        if number is not None and not _count(number):
            raise MrsDeployBatchSetError(f"batch set entry with a bad {name}: {shown(item)}")
    rows = item.get("rows")
    if rows is None:
        return BatchPart(item["batch_id"], first, count)
    if not isinstance(rows, list) or not rows or not all(_count(row) for row in rows):
        raise MrsDeployBatchSetError(f"batch set entry with a bad row map: {shown(item)}")
    return BatchPart(item["batch_id"], None, count, tuple(rows))


def is_batch_set_json(value: Any) -> bool:
    """Whether ``value`` is (claims to be) the JSON form of a batch set."""
    return isinstance(value, Mapping) and value.get("kind") == KIND


def _from_text(text: str) -> Any:
    """A rendered template: JSON, or the Python form of a dict or list (Jinja renders an XCom
    value with ``str`` unless the DAG renders native objects)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # too deep for JSON is too deep for the literal too
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise MrsDeployBatchSetError(
            f"batch_id {shown(text)} is neither a batch id nor a batch set"
        ) from None


def to_batch_set(
    value: Any, service_name: str | None = None, service_version: str | None = None
) -> BatchSet:
    """Whatever a task was given as ``batch_id``, as a :class:`BatchSet`.

    Accepted: a batch set (the Submit task's output, or its JSON or rendered text), one batch
    id, or a list of ids (or its JSON text) together with ``service_name`` and
    ``service_version``. A service given explicitly must match the set's.

    :param value: the ``batch_id`` argument, rendered.
    :param service_name: the task's ``service_name`` argument.
    :param service_version: the task's ``service_version`` argument.
    :raises MrsDeployBatchSetError: saying what was given and what to pass instead.
    """
    if isinstance(value, str) and value.strip() == "None":
        # What Jinja renders for an xcom_pull that found nothing (a task_id misspelt, or the
        # task pushed no value): sent to the server, it would fail as "batch None not found".
        raise MrsDeployBatchSetError(
            "batch_id rendered as 'None': the template's xcom_pull found no value. Check its "
            "task_id (and key), or pass the Submit task's output (batch_id=submit.output)"
        )
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        value = _from_text(value.strip())
    if isinstance(value, BatchSet):
        batch_set = value
    elif is_batch_set_json(value):
        batch_set = BatchSet.from_json(value)
    else:
        if _is_list_of_sets(value):
            raise MrsDeployBatchSetError(
                f"batch_id holds {len(value)} batch sets (the output of a mapped Submit): give "
                "each its own task, e.g. Collect.partial(...).expand(batch_id=submit.output)"
            )
        if not service_name or not service_version:
            raise MrsDeployBatchSetError(
                f"batch_id {shown(value)} names no service: pass the Submit task's output "
                "(batch_id=submit.output, a batch set that says its service), or set "
                "service_name and service_version"
            )
        return BatchSet.of_ids((service_name, service_version), _ids(value))
    given = (service_name or batch_set.service_name, service_version or batch_set.service_version)
    if given != (batch_set.service_name, batch_set.service_version):
        raise MrsDeployBatchSetError(
            f"the batch set was scored by {batch_set.service_name} {batch_set.service_version}, "
            f"not {given[0]} {given[1]}: drop service_name/service_version or fix them"
        )
    return batch_set


def _is_list_of_sets(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes, bytearray))
        and bool(value)
        and all(isinstance(item, BatchSet) or is_batch_set_json(item) for item in value)
    )


def _ids(value: Any) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if isinstance(values, Sequence) and not isinstance(values, (bytes, bytearray)):
        ids = tuple(str(item).strip() for item in values if isinstance(item, str))
        if ids and len(ids) == len(values) and all(ids):
            return ids
    raise MrsDeployBatchSetError(
        f"batch_id must be a batch set (the Submit task's output), a batch id or a list of "
        f"them, got {shown(value)}"
    )
