"""Request builders: what to send for each API call, as data (method, path, query, JSON body).

Nothing here opens a socket. Paths are relative to the server base URL and every path segment
taken from an argument is checked (:mod:`airflow_provider.api.identifiers`) and percent-quoted,
so names cannot change the path's shape: a bad value fails before anything is sent.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from airflow_provider.api.errors import MrsDeployConfigurationError
from airflow_provider.api.identifiers import batch_id_problem, segment_problem, shown

Expect = Literal["json", "bytes", "none", "progress"]

JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request of the API.

    ``params`` and ``json`` are left out of ``repr`` because they can hold credentials (login
    body, refresh token in the revoke query). Log :attr:`describe`, never the object's fields.

    :param method: HTTP method.
    :param path: path relative to the base URL, already quoted, starting with ``/``.
    :param params: query parameters.
    :param json: JSON body, or None (a raw body, as for ``start_batch``, is supplied by the caller).
    :param authenticated: whether to send ``Authorization: Bearer``.
    :param stream: whether the response body should be streamed rather than read at once.
    :param expect: how to read a successful response: ``json``, raw ``bytes``, ``none``, or
        ``progress``: a batch status read only until its state and counts are known.
    :param content_type: content type of a raw body the caller supplies (None: no raw body).
    :param idempotent: False when sending twice could do the work twice (starting a batch); such
        requests are only retried when the server cannot have acted on the first one.
    """

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict, repr=False)
    json: Any | None = field(default=None, repr=False)
    authenticated: bool = True
    stream: bool = False
    expect: Expect = "json"
    content_type: str | None = None
    idempotent: bool = True

    @property
    def describe(self) -> str:
        """``METHOD /path``: safe to log (no query string, no body)."""
        return f"{self.method} {self.path}"


def _segment(value: str, what: str) -> str:
    """``value`` quoted as one path segment; refused when it cannot be one."""
    problem = segment_problem(value)
    if problem is not None:
        raise MrsDeployConfigurationError(
            f"{what} {shown(value)} cannot be sent in a request path: {problem}. Pass the "
            f"{what} exactly as the server shows it"
        )
    return _quoted(value)


def _batch_segment(batch_id: str) -> str:
    """A batch id quoted as one path segment; refused unless it is a usable id."""
    problem = batch_id_problem(batch_id)
    if problem is not None:
        raise MrsDeployConfigurationError(
            f"batch id {shown(batch_id)} is not a usable batch id: {problem}. Pass the id "
            "Submit returned (submit.output) or one that list_batches shows"
        )
    return _quoted(batch_id)


@functools.lru_cache(maxsize=4096)
def _quoted(value: str) -> str:
    """``value`` percent-encoded as one path segment; cached because the same service, version,
    batch id and file name recur in every row's requests."""
    return quote(value, safe="")


def _index(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MrsDeployConfigurationError(f"row index must be an integer >= 0 (got {value!r})")
    return str(value)


def _service_path(name: str, version: str) -> str:
    return f"/api/{_segment(name, 'service name')}/{_segment(version, 'service version')}"


def _batch_path(name: str, version: str, batch_id: str) -> str:
    if type(name) is str and type(version) is str and type(batch_id) is str:
        return _checked_batch_path(name, version, batch_id)
    return _build_batch_path(name, version, batch_id)  # refuses the value, saying why


@functools.lru_cache(maxsize=1024)
def _checked_batch_path(name: str, version: str, batch_id: str) -> str:
    """:func:`_build_batch_path` of strings, remembered: every row's requests of a collect
    name the same service, version and batch, and checking them is most of building a path."""
    return _build_batch_path(name, version, batch_id)


def _build_batch_path(name: str, version: str, batch_id: str) -> str:
    return f"{_service_path(name, version)}/batch/{_batch_segment(batch_id)}"


def check_parallel_count(value: object) -> int:
    """``value`` when it is a usable ``parallelCount``: an integer >= 1 (not a bool).

    The one rule for the operators (when built and when run) and the request builder.

    :param value: the parallel count given by the user.
    :raises MrsDeployConfigurationError: for anything else, saying what was given.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise MrsDeployConfigurationError(
            f"parallel_count must be a whole number >= 1, the rows the server runs at once "
            f"(got {shown(value)} of type {type(value).__name__})"
        )
    if value < 1:
        raise MrsDeployConfigurationError(
            f"parallel_count must be >= 1, the rows the server runs at once (got {value})"
        )
    return value


def login(username: str, password: str) -> ApiRequest:
    """``POST /login``: exchange a user name and password for a token pair.

    :param username: user name.
    :param password: password.
    """
    return ApiRequest(
        "POST",
        "/login",
        json={"username": username, "password": password},
        authenticated=False,
    )


def refresh(refresh_token: str) -> ApiRequest:
    """``POST /login/refreshToken``: trade a refresh token for a new pair (the old one dies).

    :param refresh_token: the current refresh token.
    """
    return ApiRequest(
        "POST",
        "/login/refreshToken",
        json={"refreshToken": refresh_token},
        authenticated=False,
    )


def revoke(refresh_token: str) -> ApiRequest:
    """``DELETE /login/refreshToken?refreshToken=...``: revoke a refresh token.

    :param refresh_token: the refresh token to revoke.
    """
    return ApiRequest(
        "DELETE",
        "/login/refreshToken",
        params={"refreshToken": refresh_token},
        expect="none",
    )


def list_services() -> ApiRequest:
    """``GET /services``: every published service."""
    return ApiRequest("GET", "/services")


def get_service(name: str, version: str) -> ApiRequest:
    """``GET /services/{name}/{version}``: a one-element array (empty when not found).

    :param name: service name.
    :param version: service version.
    """
    path = f"/services/{_segment(name, 'service name')}/{_segment(version, 'service version')}"
    return ApiRequest("GET", path)


def get_swagger(name: str, version: str) -> ApiRequest:
    """``GET /api/{name}/{version}/swagger.json``: the service's Swagger 2.0 document.

    :param name: service name.
    :param version: service version.
    """
    return ApiRequest("GET", f"{_service_path(name, version)}/swagger.json")


def consume(name: str, version: str, inputs: Mapping[str, Any]) -> ApiRequest:
    """``POST /api/{name}/{version}``: score one set of inputs synchronously.

    :param name: service name.
    :param version: service version.
    :param inputs: input parameter values, JSON-encodable.
    """
    return ApiRequest("POST", _service_path(name, version), json=dict(inputs))


def start_batch(name: str, version: str, parallel_count: int) -> ApiRequest:
    """``POST /api/{name}/{version}/batch?parallelCount=N``: create and start a batch.

    The body, a JSON array with one object per row, is supplied by the caller as pre-encoded
    bytes (large batches are encoded once, possibly in chunks), hence ``content_type``.

    :param name: service name.
    :param version: service version.
    :param parallel_count: number of rows the server may run at once (the server may clamp it).
    """
    count = check_parallel_count(parallel_count)
    return ApiRequest(
        "POST",
        f"{_service_path(name, version)}/batch",
        params={"parallelCount": str(count)},
        content_type=JSON_CONTENT_TYPE,
        idempotent=False,
    )


def list_batches(name: str, version: str) -> ApiRequest:
    """``GET /api/{name}/{version}/batch``: ids of the caller's batch executions.

    :param name: service name.
    :param version: service version.
    """
    return ApiRequest("GET", f"{_service_path(name, version)}/batch")


def get_batch(name: str, version: str, batch_id: str, show_partial_results: bool) -> ApiRequest:
    """``GET /api/{name}/{version}/batch/{id}``: state, counts and results.

    :param name: service name.
    :param version: service version.
    :param batch_id: batch execution id.
    :param show_partial_results: include the rows finished so far while the batch runs.
    """
    return ApiRequest(
        "GET",
        _batch_path(name, version, batch_id),
        params={"showPartialResults": "true" if show_partial_results else "false"},
    )


def get_batch_results(name: str, version: str, batch_id: str) -> ApiRequest:
    """``GET /api/{name}/{version}/batch/{id}`` for its rows' results, read as they arrive
    (:class:`~airflow_provider.api.results_stream.BatchAnswerReader`) instead of whole.

    :param name: service name.
    :param version: service version.
    :param batch_id: batch execution id.
    """
    return dataclasses.replace(
        get_batch(name, version, batch_id, show_partial_results=False),
        stream=True,
        expect="bytes",
    )


@functools.lru_cache(maxsize=4096)
def get_batch_progress(name: str, version: str, batch_id: str) -> ApiRequest:
    """``GET /api/{name}/{version}/batch/{id}`` for its state and counts only.

    The answer is read until they are known: they come before the results, which for a
    finished batch hold every row and are not wanted. Built once per batch (the request is
    immutable): a waiting batch is polled with the same request again and again.

    :param name: service name.
    :param version: service version.
    :param batch_id: batch execution id.
    """
    return dataclasses.replace(get_batch(name, version, batch_id, False), expect="progress")


def cancel_batch(name: str, version: str, batch_id: str) -> ApiRequest:
    """``DELETE /api/{name}/{version}/batch/{id}``: cancel and delete a batch execution.

    :param name: service name.
    :param version: service version.
    :param batch_id: batch execution id.
    """
    return ApiRequest("DELETE", _batch_path(name, version, batch_id), expect="none")


def list_batch_files(name: str, version: str, batch_id: str, index: int) -> ApiRequest:
    """``GET /api/{name}/{version}/batch/{id}/{index}/files``: file names of one row.

    :param name: service name.
    :param version: service version.
    :param batch_id: batch execution id.
    :param index: 0-based row index.
    """
    return ApiRequest("GET", f"{_batch_path(name, version, batch_id)}/{_index(index)}/files")


def get_batch_file(
    name: str, version: str, batch_id: str, index: int, file_name: str
) -> ApiRequest:
    """``GET /api/{name}/{version}/batch/{id}/{index}/files/{fileName}``: raw file bytes.

    :param name: service name.
    :param version: service version.
    :param batch_id: batch execution id.
    :param index: 0-based row index.
    :param file_name: file name as listed by ``list_batch_files``.
    """
    path = (
        f"{_batch_path(name, version, batch_id)}/{_index(index)}/files/"
        f"{_segment(file_name, 'file name')}"
    )
    return ApiRequest("GET", path, stream=True, expect="bytes")


def join_url(base_url: str, request: ApiRequest) -> str:
    """Absolute URL (without query) of ``request`` on a server whose base URL may have a prefix.

    :param base_url: e.g. ``http://127.0.0.1:12800`` or ``https://gateway/mlserver/``.
    :param request: the request.
    """
    return base_url.rstrip("/") + request.path
