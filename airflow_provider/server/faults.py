"""Deterministic fault injection for tests, kept in memory.

Reachable only when the server is started with ``--enable-fault-hooks``, and then only by the
admin, through ``PUT /_faults`` (replace the configuration), ``GET /_faults`` and
``DELETE /_faults`` (reset). Row faults are read when each row starts.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from dataclasses import dataclass
from typing import Any

from airflow_provider.server.errors import ApiError

INJECTABLE_STATUSES = (429, 503)
_KEYS = {
    "service",
    "rowDelaySeconds",
    "failRows",
    "failEvery",
    "failRatio",
    "failSeed",
    "failOnce",
    "failNextBatches",
    "batchFailureMessage",
    "httpErrors",
    "extraFileNames",
    "rowOutputs",
}


@dataclass
class HttpFault:
    """Answer the next ``remaining`` matching requests with ``status`` and ``Retry-After``."""

    status: int
    remaining: int
    retry_after: int
    path_regex: str | None
    method: str | None

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is targeted by this fault."""
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path_regex or re.search(self.path_regex, path) is not None

    def to_json(self) -> dict[str, Any]:
        """The configuration form."""
        return {
            "status": self.status,
            "count": self.remaining,
            "retryAfter": self.retry_after,
            "pathRegex": self.path_regex,
            "method": self.method,
        }


def _bad(message: str) -> ApiError:
    return ApiError(400, f"Invalid fault configuration: {message}")


def _number(body: dict[str, Any], key: str, default: float, minimum: float = 0.0) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise _bad(f"'{key}' must be a number >= {minimum}")
    return float(value)


def _integer(body: dict[str, Any], key: str, default: int, minimum: int = 0) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _bad(f"'{key}' must be an integer >= {minimum}")
    return value


def _http_fault(raw: Any) -> HttpFault:
    if not isinstance(raw, dict):
        raise _bad("each of 'httpErrors' must be an object")
    status = raw.get("status")
    if status not in INJECTABLE_STATUSES:
        raise _bad(f"httpErrors status must be one of {INJECTABLE_STATUSES}")
    regex = raw.get("pathRegex")
    if regex is not None:
        if not isinstance(regex, str):
            raise _bad("'pathRegex' must be a string")
        try:
            re.compile(regex)
        except re.error as exc:
            raise _bad(f"'pathRegex' does not compile: {exc}") from exc
    method = raw.get("method")
    if method is not None and not isinstance(method, str):
        raise _bad("'method' must be a string")
    return HttpFault(
        status=int(status),
        remaining=_integer(raw, "count", 1, minimum=1),
        retry_after=_integer(raw, "retryAfter", 1),
        path_regex=regex,
        method=method,
    )


def _row_outputs(raw: Any) -> dict[int, dict[str, Any]]:
    """``{"<row index>": {output: value}}`` with each index a non-negative integer."""
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise _bad("'rowOutputs' must map row indexes to objects of output values")
    parsed = {}
    for key, outputs in raw.items():
        if not (isinstance(key, str) and key.isascii() and key.isdigit()):
            raise _bad(f"'rowOutputs' key {key!r} is not a row index")
        parsed[int(key)] = dict(outputs)
    return parsed


class Faults:
    """The current fault configuration; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to no faults at all."""
        with self._lock:
            self._service: str | None = None
            self._delay = 0.0
            self._fail_rows: frozenset[int] = frozenset()
            self._fail_every = 0
            self._fail_ratio = 0.0
            self._fail_seed = 0
            self._fail_once = False
            #: Digests of the inputs that already failed once (``failOnce``).
            self._failed_inputs: set[str] = set()
            self._fail_batches = 0
            self._batch_message = "Injected batch failure."
            self._http: list[HttpFault] = []
            self._extra_files: list[str] = []
            self._row_outputs: dict[int, dict[str, Any]] = {}

    def configure(self, body: Any) -> None:
        """Replace the configuration with ``body`` (validated; 400 on a bad value)."""
        if not isinstance(body, dict):
            raise _bad("the body must be a JSON object")
        unknown = sorted(set(body) - _KEYS)
        if unknown:
            raise _bad(f"unknown keys {unknown}; known: {sorted(_KEYS)}")
        service = body.get("service")
        if service is not None and not isinstance(service, str):
            raise _bad("'service' must be a string")
        fail_rows = body.get("failRows", [])
        if not isinstance(fail_rows, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in fail_rows
        ):
            raise _bad("'failRows' must be a list of integers")
        ratio = _number(body, "failRatio", 0.0)
        if ratio > 1:
            raise _bad("'failRatio' must be between 0 and 1")
        message = body.get("batchFailureMessage", "Injected batch failure.")
        if not isinstance(message, str):
            raise _bad("'batchFailureMessage' must be a string")
        http_raw = body.get("httpErrors", [])
        if not isinstance(http_raw, list):
            raise _bad("'httpErrors' must be a list")
        extra = body.get("extraFileNames", [])
        if not isinstance(extra, list) or not all(isinstance(n, str) for n in extra):
            raise _bad("'extraFileNames' must be a list of strings")
        row_outputs = _row_outputs(body.get("rowOutputs", {}))
        delay = _number(body, "rowDelaySeconds", 0.0)
        every = _integer(body, "failEvery", 0)
        seed = _integer(body, "failSeed", 0)
        batches = _integer(body, "failNextBatches", 0)
        fail_once = body.get("failOnce", False)
        if not isinstance(fail_once, bool):
            raise _bad("'failOnce' must be true or false")
        http = [_http_fault(item) for item in http_raw]
        with self._lock:
            self._service = service
            self._delay = delay
            self._fail_rows = frozenset(fail_rows)
            self._fail_every = every
            self._fail_ratio = ratio
            self._fail_seed = seed
            self._fail_once = fail_once
            self._failed_inputs = set()
            self._fail_batches = batches
            self._batch_message = message
            self._http = http
            self._extra_files = list(extra)
            self._row_outputs = row_outputs

    def to_json(self) -> dict[str, Any]:
        """The current configuration, with what is left of the counters."""
        with self._lock:
            return {
                "service": self._service,
                "rowDelaySeconds": self._delay,
                "failRows": sorted(self._fail_rows),
                "failEvery": self._fail_every,
                "failRatio": self._fail_ratio,
                "failSeed": self._fail_seed,
                "failOnce": self._fail_once,
                "failNextBatches": self._fail_batches,
                "batchFailureMessage": self._batch_message,
                "httpErrors": [f.to_json() for f in self._http],
                "extraFileNames": list(self._extra_files),
                "rowOutputs": {str(i): dict(v) for i, v in self._row_outputs.items()},
            }

    def _applies(self, service: str) -> bool:
        return self._service is None or self._service == service

    def row_delay(self, service: str) -> float:
        """Seconds to wait before running a row of ``service``."""
        with self._lock:
            return self._delay if self._applies(service) else 0.0

    def row_fails(self, service: str, index: int, record: str = "") -> bool:
        """Whether row ``index`` of a ``service`` batch must fail (deterministic).

        With ``failOnce``, a chosen row fails only the first time its input (``record``, the
        row's JSON text) is run: submitted again, in any batch and at any index, it succeeds.
        That is a transient failure, the case a repair of failed rows is for.
        """
        with self._lock:
            if not self._applies(service) or not self._chosen(index):
                return False
            if not self._fail_once:
                return True
            digest = hashlib.sha256(f"{service}\0{record}".encode()).hexdigest()
            if digest in self._failed_inputs:
                return False
            self._failed_inputs.add(digest)
            return True

    def _chosen(self, index: int) -> bool:
        if index in self._fail_rows:
            return True
        if self._fail_every and index % self._fail_every == 0:
            return True
        if self._fail_ratio > 0:
            return random.Random(f"{self._fail_seed}:{index}").random() < self._fail_ratio
        return False

    def take_batch_failure(self, service: str) -> str | None:
        """Consume one whole-batch failure for a new ``service`` batch, returning its message."""
        with self._lock:
            if self._fail_batches > 0 and self._applies(service):
                self._fail_batches -= 1
                return self._batch_message
            return None

    def http_errors_configured(self) -> bool:
        """Whether any injected HTTP error is configured (even one already used up).

        Layers answering requests before the fault middleware step aside while this is true,
        so injected errors hit every request exactly as configured.
        """
        with self._lock:
            return bool(self._http)

    def take_http_error(self, method: str, path: str) -> HttpFault | None:
        """Consume one injected HTTP error matching this request, if any."""
        with self._lock:
            for fault in self._http:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.remaining -= 1
                    return HttpFault(
                        fault.status, 0, fault.retry_after, fault.path_regex, fault.method
                    )
            return None

    def row_outputs(self, service: str, index: int) -> dict[str, Any]:
        """Output parameters that replace or add to row ``index``'s own (empty: none)."""
        with self._lock:
            return dict(self._row_outputs.get(index, {})) if self._applies(service) else {}

    def extra_file_names(self, service: str) -> list[str]:
        """Names that every row of ``service`` lists besides its real files."""
        with self._lock:
            return list(self._extra_files) if self._applies(service) else []
