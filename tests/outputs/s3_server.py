"""moto's S3-compatible server on a free loopback port, counting the requests it receives.

Every request is named by its S3 operation (``PutObject``, ``CopyObject``, ``UploadPart``...)
from its method, query and headers, as S3 itself tells them apart, and counted before moto
answers it, so a test or a benchmark sees what a client really sent over HTTP. A fault can be
injected: requests matching a rule are answered ``500 InternalError`` without reaching moto.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote

#: ``GET`` answers the counts as JSON, ``DELETE`` answers them and starts afresh (for a server
#: run in its own process: ``python -m tests.outputs.s3_server``).
COUNTS_PATH = "/__counts__"
#: Decides whether to fail a request, given its operation and ``bucket/key``.
Fault = Callable[[str, str], bool]

_INTERNAL_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>injected fault</Message></Error>"
)
_ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)


def operation(environ: dict[str, Any]) -> str:
    """The S3 operation of a path-style request (``/bucket/key?query``)."""
    method = environ["REQUEST_METHOD"]
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    has_key = "/" in environ.get("PATH_INFO", "").strip("/")
    copy = "HTTP_X_AMZ_COPY_SOURCE" in environ
    if method == "PUT":
        if "uploadId" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        if not has_key:
            return "CreateBucket"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        if "delete" in query:
            return "DeleteObjects"
        return "Post"
    if method == "DELETE":
        if "uploadId" in query:
            return "AbortMultipartUpload"
        return "DeleteObject" if has_key else "DeleteBucket"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if "uploads" in query:
        return "ListMultipartUploads"
    if "list-type" in query or (not has_key and environ.get("PATH_INFO", "/") != "/"):
        return "ListObjects"
    return "GetObject" if has_key else "ListBuckets"


class _Counting:
    """WSGI middleware: count (and maybe fail) each request, then hand it to moto."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self.keys: list[tuple[str, str]] = []
        self.fault: Fault | None = None
        self.answer: tuple[str, bytes] = ("500 Internal Server Error", _INTERNAL_ERROR)
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COUNTS_PATH:  # another process reads or resets counts
            with self.lock:
                body = json.dumps(dict(self.counts)).encode()
                if environ["REQUEST_METHOD"] == "DELETE":
                    self.counts.clear()
                    self.keys.clear()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        name = operation(environ)
        key = unquote(environ.get("PATH_INFO", "")).lstrip("/")
        with self.lock:
            self.counts[name] += 1
            self.keys.append((name, key))
            fault, answer = self.fault, self.answer
        if fault is not None and fault(name, key):
            stream = environ.get("wsgi.input")
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if stream is not None and length:
                stream.read(length)
            start_response(answer[0], [("Content-Type", "application/xml")])
            return [answer[1]]
        return self.app(environ, start_response)


class CountingS3Server:
    """moto's S3 server on ``127.0.0.1`` in a daemon thread; ``with`` starts and stops it.

    :attr:`counts` holds the requests received per operation since the last :meth:`reset`;
    :attr:`keys` each request's operation and ``bucket/key`` in order.
    """

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                """No line per request: a benchmark sends thousands."""

        self._counting = _Counting(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            "127.0.0.1", 0, self._counting, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The server's URL."""
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def counts(self) -> Counter[str]:
        """Requests received per S3 operation."""
        with self._counting.lock:
            return Counter(self._counting.counts)

    @property
    def keys(self) -> list[tuple[str, str]]:
        """Each request's operation and ``bucket/key``, in the order received."""
        with self._counting.lock:
            return list(self._counting.keys)

    def reset(self) -> None:
        """Start counting afresh."""
        with self._counting.lock:
            self._counting.counts.clear()
            self._counting.keys.clear()

    @contextmanager
    def failing(self, fault: Fault, *, denied: bool = False) -> Iterator[None]:
        """Answer requests ``fault`` picks with ``500 InternalError`` (``403 AccessDenied``
        when ``denied``: what a bucket policy refusing the call answers) while in the block."""
        self._counting.fault = fault
        if denied:
            self._counting.answer = ("403 Forbidden", _ACCESS_DENIED)
        try:
            yield
        finally:
            self._counting.fault = None
            self._counting.answer = ("500 Internal Server Error", _INTERNAL_ERROR)

    def __enter__(self) -> CountingS3Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextmanager
def serving_bucket(bucket: str) -> Iterator[CountingS3Server]:
    """A counting S3 server on loopback holding the empty bucket ``bucket``, stopped after."""
    import boto3

    with CountingS3Server() as running:
        boto3.client(
            "s3",
            endpoint_url=running.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket)
        yield running


def aws_connection(endpoint: str, attempts: int | None = None) -> str:
    """An ``AIRFLOW_CONN_...`` value: an ``aws`` connection to the server.

    :param attempts: how many times the client sends a request that fails (botocore's
        default when None).
    """
    extra: dict[str, Any] = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    if attempts is not None:
        extra["config_kwargs"] = {"retries": {"max_attempts": attempts, "mode": "standard"}}
    return json.dumps(
        {"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}
    )


def server_environment(endpoint: str, conn_id: str, attempts: int | None = None) -> dict[str, str]:
    """The variables pointing the ``aws`` connection ``conn_id`` (and boto3) at the server."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        f"AIRFLOW_CONN_{conn_id.upper()}": aws_connection(endpoint, attempts),
    }


def use_server(endpoint: str, conn_id: str, attempts: int | None = None) -> None:
    """Point the ``aws`` connection ``conn_id`` (and boto3's defaults) at the server, in this
    process's environment."""
    os.environ.update(server_environment(endpoint, conn_id, attempts))


def fetch_counts(endpoint: str, *, reset: bool = False) -> Counter[str]:
    """The counts of a server running in another process (and start afresh if ``reset``)."""
    from urllib.request import Request, urlopen

    request = Request(endpoint + COUNTS_PATH, method="DELETE" if reset else "GET")
    with urlopen(request, timeout=30) as response:
        return Counter(json.loads(response.read()))


def main() -> None:
    """Serve until killed, printing ``listening on <url>`` once ready."""
    import time

    with CountingS3Server() as server:
        print(f"listening on {server.endpoint}", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
