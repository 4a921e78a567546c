"""The address of the batch status page: built by the extra link, checked by the page.

``/mrsdeploy/batches/{connection_id}/{service_name}/{service_version}/{batch_id}`` under the
API server's root. Each value is one path segment, percent-quoted when the link is built. The
page checks every value again before using it, since anyone can type an address: a value that
could change the shape of a path (``/``, ``\\``, ``.``, ``..``), a control character, or an
absurd length is refused before any lookup or request is made.

Standard library only: the link is built in the task's worker, and the Submit operator's module
is imported on every DAG parse.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from airflow_provider.api.identifiers import batch_id_problem

#: Where the API server mounts the provider's pages (not one of Airflow's reserved prefixes).
URL_PREFIX = "/mrsdeploy"
#: The batch status page, under :data:`URL_PREFIX`.
BATCH_ROUTE = "/batches/{connection_id}/{service_name}/{service_version}/{batch_id}"

#: Longest value accepted in the page's address (a connection id is at most 250 characters).
MAX_VALUE_CHARS = 250

#: The characters Airflow allows in a connection id, less the path separators: a ``/`` would
#: be decoded before routing and split the segment.
_CONNECTION_ID = re.compile(r"[\w#!().:-]+")


def connection_id_problem(value: object) -> str | None:
    """Why ``value`` cannot name the connection in the page's address, or None when it can.

    :param value: a connection id.
    """
    if not isinstance(value, str):
        return f"it is of type {type(value).__name__}, not a string"
    if value in ("", ".", ".."):
        return "it is empty, '.' or '..'"
    if len(value) > MAX_VALUE_CHARS:
        return f"it is longer than {MAX_VALUE_CHARS} characters"
    if not _CONNECTION_ID.fullmatch(value):
        return "it holds a character other than letters, digits and _ # ! ( ) . : -"
    return None


def segment_value_problem(value: object) -> str | None:
    """Why ``value`` cannot be a service name, version or batch id in the page's address.

    The batch id's rule (one path segment: no separator, no control character, not ``.`` or
    ``..``, not blank) and a length limit. The hook percent-quotes each value it sends.

    :param value: a service name, service version or batch id.
    """
    problem = batch_id_problem(value)
    if problem is None and isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        problem = f"it is longer than {MAX_VALUE_CHARS} characters"
    return problem


def page_problems(
    connection_id: object, service_name: object, service_version: object, batch_id: object
) -> dict[str, str]:
    """Each value of the page's address that cannot be used, with the reason.

    :param connection_id: the ``mrsdeploy`` connection.
    :param service_name: the service's name.
    :param service_version: the service's version.
    :param batch_id: the batch execution id.
    """
    problems = {
        "connection id": connection_id_problem(connection_id),
        "service name": segment_value_problem(service_name),
        "service version": segment_value_problem(service_version),
        "batch id": segment_value_problem(batch_id),
    }
    return {name: problem for name, problem in problems.items() if problem is not None}


def batch_page_path(
    connection_id: str, service_name: str, service_version: str, batch_id: str
) -> str | None:
    """The page's path under the API server's root, or None when a value cannot be in it.

    :param connection_id: the ``mrsdeploy`` connection.
    :param service_name: the service's name.
    :param service_version: the service's version.
    :param batch_id: the batch execution id.
    """
    if page_problems(connection_id, service_name, service_version, batch_id):
        return None
    route = BATCH_ROUTE.format(
        connection_id=quote(connection_id, safe=""),
        service_name=quote(service_name, safe=""),
        service_version=quote(service_version, safe=""),
        batch_id=quote(batch_id, safe=""),
    )
    return URL_PREFIX + route


def batch_page_url(
    api_base_url: str | None,
    connection_id: str,
    service_name: str,
    service_version: str,
    batch_id: str,
) -> str | None:
    """The page's address: under ``[api] base_url`` when set (also when Airflow is served
    under a path), otherwise relative to the UI's own origin. None when a value cannot be in it.

    :param api_base_url: ``[api] base_url``, or None / empty.
    :param connection_id: the ``mrsdeploy`` connection.
    :param service_name: the service's name.
    :param service_version: the service's version.
    :param batch_id: the batch execution id.
    """
    path = batch_page_path(connection_id, service_name, service_version, batch_id)
    if path is None:
        return None
    base = (api_base_url or "").strip().rstrip("/")
    return base + path
