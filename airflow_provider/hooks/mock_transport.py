"""A transport that answers from a function: unit tests of code using the hook, on both paths,
without a server.

Give it to the hook (``MrsDeployHook(transport=MockTransport(handler))``): every request the
hook would send, on the blocking and on the async path, goes to ``handler`` instead, after the
same call flow (login, token refresh, one renewal on 401) and the same retry policy. The
handler sees each request as sent and answers with a status and a JSON value::

    def handler(request: MockRequest) -> tuple[int, Any]:
        if request.path == "/login":
            return 200, {"access_token": "t", "expires_in": 3600}
        return 200, {"state": "Complete", "completedItemCount": 1, "totalItemCount": 1}

Uploads arrive whole in :attr:`MockRequest.body`. A file download (``iter_batch_file`` and
its async form) is answered with the file's bytes, or with a :class:`MockStream` that breaks
after some bytes: the hook then resumes with ``Range`` exactly as against a server, on both
paths, and the handler sees the ``Range`` header and answers 206 with ``Content-Range``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider.api.errors import MrsDeployConnectionError
from airflow_provider.api.exchange import Outgoing, RawResponse
from airflow_provider.hooks.settings import MrsDeployConnectionSettings


@dataclass(frozen=True)
class MockRequest:
    """One request as the hook sent it.

    :param method: HTTP method.
    :param path: path under the base URL.
    :param params: query parameters.
    :param json: the JSON body, if any.
    :param headers: headers, ``Authorization`` included when the call is authenticated.
    :param body: a raw upload (a batch's records), whole.
    """

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class MockStream:
    """The body of a download answer, which may break after ``break_after`` bytes (the
    connection is lost there: the hook resumes from the first byte it did not get)."""

    data: bytes
    break_after: int | None = None

    def close(self) -> None:
        """Nothing to release (a real response closes its connection)."""


Answer = tuple[int, Any] | tuple[int, Any, Mapping[str, str]]


class MockTransport:
    """Answers every request with ``handler``; records what was sent in :attr:`requests`.

    :param handler: gets a :class:`MockRequest`, returns ``(status, json_value)`` or
        ``(status, json_value, headers)``; it may also raise a provider error (a
        ``MrsDeployConnectionError`` plays a connection failure).
    """

    def __init__(self, handler: Callable[[MockRequest], Answer]) -> None:
        self.handler = handler
        self.requests: list[MockRequest] = []

    def send(self, settings: MrsDeployConnectionSettings, outgoing: Outgoing) -> RawResponse:
        """The blocking path's transport."""
        request = outgoing.request
        headers = dict(outgoing.headers)
        if outgoing.token is not None:
            headers["Authorization"] = f"Bearer {outgoing.token}"
        sent = MockRequest(
            request.method,
            request.path,
            dict(request.params or {}),
            request.json,
            headers,
            _whole(outgoing.body.open()) if outgoing.body is not None else None,
        )
        self.requests.append(sent)
        answer = self.handler(sent)
        status, value = answer[0], answer[1]
        reply_headers = dict(answer[2]) if len(answer) > 2 else {}
        if request.stream and 200 <= status < 300:
            stream = value if isinstance(value, MockStream) else MockStream(bytes(value))
            return RawResponse(status, reply_headers, b"", stream=stream)
        reply_headers.setdefault("Content-Type", "application/json")
        body = b"" if value is None else json.dumps(value).encode()
        return RawResponse(status, reply_headers, body)

    async def asend(self, settings: MrsDeployConnectionSettings, outgoing: Outgoing) -> RawResponse:
        """The async path's transport (the same answers)."""
        return self.send(settings, outgoing)

    def iter_stream(
        self, raw: RawResponse, chunk_size: int, method: str, path: str, *, stall_timeout: float
    ) -> Iterator[bytes]:
        """A download's body in chunks, as the blocking transport reads one."""
        stream: MockStream = raw.stream
        end = len(stream.data) if stream.break_after is None else stream.break_after
        for start in range(0, end, chunk_size):
            yield stream.data[start : min(start + chunk_size, end)]
        if end < len(stream.data):
            raise MrsDeployConnectionError(
                "download interrupted: the connection was lost", method=method, path=path
            )

    async def aiter_stream(
        self, raw: RawResponse, chunk_size: int, method: str, path: str, *, stall_timeout: float
    ) -> AsyncIterator[bytes]:
        """The same, as the async transport reads one."""
        for chunk in self.iter_stream(raw, chunk_size, method, path, stall_timeout=stall_timeout):
            yield chunk


def _whole(body: bytes | Any) -> bytes:
    """An upload body as one bytes value (it may come as an iterable of chunks)."""
    return body if isinstance(body, bytes) else b"".join(body)
