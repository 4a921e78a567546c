"""The hook's calls as one table: how each request is built and how its answer is read.

Each call of the hook exists twice, blocking and async. Both forms run the same
:class:`Endpoint`, so they cannot drift apart: the request, the parser and what a 404 means
(a listing of files that is empty, a cancel that finds nothing left) are written once here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from airflow_provider.api import calls
from airflow_provider.api.calls import ApiRequest
from airflow_provider.api.errors import MrsDeployNotFoundError
from airflow_provider.api.models import BatchStatus
from airflow_provider.api.parsers import (
    decode_json,
    parse_batch_ids,
    parse_batch_progress,
    parse_batch_status_body,
    parse_file_list,
    parse_services,
    parse_swagger,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint(Generic[T]):
    """One call: its request, the reading of its answer, and the meaning of a 404.

    :param request: builds the request from the call's arguments.
    :param read: reads a successful answer's body (``body``, ``what``).
    :param when_missing: the result when the server answers 404 (after a successful login):
        None means a 404 is raised as ``MrsDeployNotFoundError``.
    """

    request: Callable[..., ApiRequest]
    read: Callable[[bytes, str], T]
    when_missing: Callable[[], T] | None = None

    def on_missing(self, error: MrsDeployNotFoundError) -> T:
        """The result of a 404 (``error``), or ``error`` raised when a 404 has no meaning."""
        if self.when_missing is None:
            raise error
        return self.when_missing()


def _json(parse: Callable[[Any], T]) -> Callable[[bytes, str], T]:
    def read(body: bytes, what: str) -> T:
        return parse(decode_json(body, what))

    return read


def _done(body: bytes, what: str) -> bool:
    return True


def _gone() -> bool:
    return False


LIST_SERVICES = Endpoint(calls.list_services, _json(parse_services))
GET_SWAGGER = Endpoint(calls.get_swagger, _json(parse_swagger))
LIST_BATCHES = Endpoint(calls.list_batches, _json(parse_batch_ids))
BATCH_STATUS: Endpoint[BatchStatus] = Endpoint(calls.get_batch, parse_batch_status_body)
BATCH_PROGRESS: Endpoint[BatchStatus] = Endpoint(calls.get_batch_progress, parse_batch_progress)
#: True when cancelled, False when the batch was already gone.
CANCEL_BATCH: Endpoint[bool] = Endpoint(calls.cancel_batch, _done, when_missing=_gone)
#: A row without files answers 404.
LIST_BATCH_FILES: Endpoint[list[str]] = Endpoint(
    calls.list_batch_files, _json(parse_file_list), when_missing=list
)
