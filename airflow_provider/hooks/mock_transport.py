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

Streamed downloads (``iter_batch_file``) and raw upload bodies are not served: they need a
server (the reference server, on loopback).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
    """

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


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
        if outgoing.body is not None or outgoing.request.stream:
            raise NotImplementedError(
                "MockTransport serves JSON calls only: run uploads and downloads against the "
                "reference server"
            )
        request = outgoing.request
        headers = dict(outgoing.headers)
        if outgoing.token is not None:
            headers["Authorization"] = f"Bearer {outgoing.token}"
        sent = MockRequest(
            request.method, request.path, dict(request.params or {}), request.json, headers
        )
        self.requests.append(sent)
        answer = self.handler(sent)
        status, value = answer[0], answer[1]
        reply_headers = dict(answer[2]) if len(answer) > 2 else {}
        reply_headers.setdefault("Content-Type", "application/json")
        body = b"" if value is None else json.dumps(value).encode()
        return RawResponse(status, reply_headers, body)

    async def asend(self, settings: MrsDeployConnectionSettings, outgoing: Outgoing) -> RawResponse:
        """The async path's transport (the same answers)."""
        return self.send(settings, outgoing)
