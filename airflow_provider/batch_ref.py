"""Which batches a task acts on, and of which service, however the ids reached it.

The Submit operator pushes the ids (its return value) together with the service name and
version. A Sensor or Collect given ``batch_id=submit.output`` only receives the rendered ids, so
it remembers the upstream task at construction time and reads the service from that task's XCom
when the user did not name it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider.api import MrsDeployError

XCOM_SERVICE_NAME = "service_name"
XCOM_SERVICE_VERSION = "service_version"
XCOM_BATCH_IDS = "batch_ids"


@dataclass(frozen=True)
class BatchRef:
    """A service and the batch executions, in submission order, that a task works on."""

    service_name: str
    service_version: str
    batch_ids: tuple[str, ...]

    def describe(self) -> str:
        """For log lines and errors."""
        return f"{self.service_name} {self.service_version} batch {', '.join(self.batch_ids)}"


def normalize_batch_ids(value: Any) -> tuple[str, ...]:
    """Accept one id, a list of ids, or the JSON text of a list (a rendered template)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise MrsDeployError(f"batch_id {value!r} is not a valid JSON list") from None
        else:
            value = [text]
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        ids = tuple(str(v).strip() for v in value)
        if ids and all(ids):
            return ids
    raise MrsDeployError(
        f"batch_id must be a batch execution id or a list of them, got {value!r}; pass the "
        "submit task's output (submit.output) or a template that renders to it"
    )


def upstream_task_id(value: Any) -> str | None:
    """The task behind an ``XComArg`` passed as batch id, if any (read at construction time)."""
    operator = getattr(value, "operator", None)
    task_id = getattr(operator, "task_id", None)
    return task_id if isinstance(task_id, str) else None


def resolve_batch_ref(
    context: Any,
    batch_id: Any,
    service_name: str | None,
    service_version: str | None,
    source_task_id: str | None,
) -> BatchRef:
    """Build the :class:`BatchRef`, reading the service from the submit task's XCom if needed."""
    batch_ids = normalize_batch_ids(batch_id)
    if (not service_name or not service_version) and source_task_id:
        ti = context["ti"]
        service_name = service_name or ti.xcom_pull(task_ids=source_task_id, key=XCOM_SERVICE_NAME)
        service_version = service_version or ti.xcom_pull(
            task_ids=source_task_id, key=XCOM_SERVICE_VERSION
        )
    if not service_name or not service_version:
        raise MrsDeployError(
            "cannot tell which service the batch belongs to: pass service_name and "
            "service_version, or pass batch_id=<submit task>.output so they are read from its XCom"
        )
    return BatchRef(str(service_name), str(service_version), batch_ids)
