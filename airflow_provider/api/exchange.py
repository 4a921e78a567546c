"""The messages between a protocol flow and the transport that drives it.

A flow yields :class:`Outgoing` requests and receives :class:`RawResponse` answers; it never
touches a socket. Any transport (blocking, async, in-memory for tests) can drive it by sending
what it yields and feeding back what came.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider.api.body import RequestBody
from airflow_provider.api.calls import ApiRequest


@dataclass(frozen=True)
class Outgoing:
    """A request to send now, with the bearer token to put in ``Authorization`` (if any).

    :param request: the API request.
    :param token: access token, or None for unauthenticated calls.
    :param body: raw body supplier, for requests whose body is not JSON from ``request.json``.
    :param headers: extra request headers (``Range`` when resuming a download); never secrets.
    """

    request: ApiRequest
    token: str | None = field(default=None, repr=False)
    body: RequestBody | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class RawResponse:
    """What a transport got back.

    :param status: HTTP status.
    :param headers: response headers.
    :param body: the body; empty for a successful streamed response, always read for errors.
    :param stream: transport-specific open response of a successful streamed request.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    stream: Any = None


#: A flow: yields requests, receives their answers, returns the answer of the call.
Flow = Generator[Outgoing, RawResponse, RawResponse]
