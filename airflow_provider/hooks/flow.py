"""The call flow: which requests to send for one API call, including login and token renewal.

The flow is a generator that yields :class:`Outgoing` requests and receives :class:`RawResponse`
answers, without doing I/O itself. The sync and async transports drive the same generator, so
authentication rules (when to log in, refresh, retry once on 401) exist exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider.api import calls
from airflow_provider.api.calls import ApiRequest
from airflow_provider.api.errors import (
    MrsDeployApiError,
    MrsDeployAuthError,
    MrsDeployError,
    error_from_response,
    redirect_error,
)
from airflow_provider.api.headers import header_value
from airflow_provider.api.parsers import decode_json, parse_token_pair
from airflow_provider.hooks.body import RequestBody
from airflow_provider.hooks.logs import LogLike
from airflow_provider.hooks.settings import MrsDeployConnectionSettings
from airflow_provider.hooks.tokens import TokenCache

CHECK_CREDENTIALS = "check the connection's login/password or bearer token"


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


Flow = Generator[Outgoing, RawResponse, RawResponse]


class Authenticator:
    """Adds authentication to a request: token from cache, refresh, login, one retry on 401.

    :param settings: connection settings.
    :param tokens: the hook's token cache (shared by its sync and async paths).
    :param log: where to log renewals (never tokens or bodies).
    :param clock: epoch seconds source.
    """

    def __init__(
        self,
        settings: MrsDeployConnectionSettings,
        tokens: TokenCache,
        log: LogLike,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self.tokens = tokens
        self.log = log
        self.clock = clock

    def call(
        self,
        request: ApiRequest,
        body: RequestBody | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Flow:
        """Flow for one API call; returns the successful response or raises the mapped error.

        :param request: the API request.
        :param body: raw body, for ``start_batch``.
        :param headers: extra request headers, sent on every attempt.
        """
        extra = dict(headers or {})
        token = (yield from self._token(renew=False)) if request.authenticated else None
        response = yield from self._send(Outgoing(request, token, body, extra))
        if response.status == 401 and request.authenticated:
            refused = self._error(request, response)
            if self.settings.uses_bearer_token:
                raise self._auth_error(refused, "the server refused the bearer token")
            if body is not None and not body.replayable:
                raise self._auth_error(
                    refused, "the token was refused and the body cannot be resent"
                )
            self.log.info(
                "%s was refused (401); renewing the token and retrying once", request.describe
            )
            token = yield from self._token(renew=True)
            response = yield from self._send(Outgoing(request, token, body, extra))
            if response.status == 401:
                raise self._auth_error(
                    self._error(request, response), "the server refused a freshly issued token"
                )
        if response.status >= 400:
            raise self._error(request, response)
        return response

    def _send(self, outgoing: Outgoing) -> Generator[Outgoing, RawResponse, RawResponse]:
        """Send one request; a redirect is an error, never followed (see transports)."""
        response = yield outgoing
        if 300 <= response.status < 400:
            request = outgoing.request
            raise redirect_error(
                response.status,
                header_value(response.headers, "Location"),
                request.method,
                request.path,
                self.settings.base_url,
            )
        return response

    def _error(self, request: ApiRequest, response: RawResponse) -> MrsDeployApiError:
        return error_from_response(
            response.status,
            response.body,
            request.method,
            request.path,
            response.headers,
            now=self.clock(),
        )

    def _auth_error(self, error: MrsDeployApiError, what: str) -> MrsDeployAuthError:
        return MrsDeployAuthError(
            f"{what} on {self.settings.base_url} ({error.message}); {CHECK_CREDENTIALS}",
            status_code=error.status_code,
            method=error.method,
            path=error.path,
            exception_type=error.exception_type,
        )

    def _token(self, *, renew: bool) -> Generator[Outgoing, RawResponse, str]:
        """Return an access token, refreshing or logging in when needed.

        :param renew: the server refused the cached token: do not trust it even if unexpired.
        """
        if self.settings.bearer_token is not None:
            return self.settings.bearer_token
        if not renew:
            cached = self.tokens.usable_token(self.clock())
            if cached is not None:
                return cached
        refresh_token = self.tokens.refresh_token()
        if refresh_token is not None:
            token = yield from self._refresh(refresh_token)
            if token is not None:
                return token
            self.tokens.clear()
        return (yield from self._login())

    def _refresh(self, refresh_token: str) -> Generator[Outgoing, RawResponse, str | None]:
        """A new access token from the refresh token, or None when refreshing failed.

        Whatever goes wrong (refused, missing endpoint, server error, no answer, an answer that
        is not a token pair), a fresh login follows: a refresh that cannot work must not stop
        the call, and its failure must never read as the answer of the call itself.
        """
        request = calls.refresh(refresh_token)
        try:
            response = yield from self._send(Outgoing(request))
            if response.status < 400:
                return self._store(response)
            why = f"answered {response.status}"
        except MrsDeployError as err:
            why = f"failed ({err})"
        self.log.info("Refreshing the token %s; logging in again", why)
        return None

    def _login(self) -> Generator[Outgoing, RawResponse, str]:
        username = self.settings.username or ""
        request = calls.login(username, self.settings.password or "")
        response = yield from self._send(Outgoing(request))
        if 400 <= response.status < 500:
            # Never "not found" or "bad request" of the call being made: the login failed.
            error = self._error(request, response)
            if response.status in (400, 401, 403):
                what = f"login as {username!r} on {self.settings.base_url} was refused"
                fix = CHECK_CREDENTIALS
            else:
                what = f"the login endpoint of {self.settings.base_url} answered {response.status}"
                fix = "check the connection's host, port and path prefix"
            raise MrsDeployAuthError(
                f"{what} ({error.message}); {fix}",
                status_code=error.status_code,
                method=error.method,
                path=error.path,
                exception_type=error.exception_type,
            )
        if response.status >= 400:
            raise self._error(request, response)  # 5xx: retried like any server error
        self.log.info("Logged in to %s as %s", self.settings.base_url, username)
        return self._store(response)

    def _store(self, response: RawResponse) -> str:
        now = self.clock()
        pair = parse_token_pair(decode_json(response.body, "token response"), now)
        self.tokens.store(pair, now)
        return pair.access_token


def drive(flow: Flow, send: Callable[[Outgoing], RawResponse]) -> RawResponse:
    """Run a flow with a blocking transport.

    :param flow: the flow generator.
    :param send: sends one request and returns the raw response.
    """
    try:
        outgoing = next(flow)
        while True:
            try:
                response = send(outgoing)
            except MrsDeployError as err:
                outgoing = flow.throw(err)  # the flow may recover (a failed refresh)
            else:
                outgoing = flow.send(response)
    except StopIteration as done:
        result: RawResponse = done.value
        return result
    finally:
        flow.close()


async def adrive(flow: Flow, send: Callable[[Outgoing], Awaitable[RawResponse]]) -> RawResponse:
    """Run a flow with an async transport.

    :param flow: the flow generator.
    :param send: sends one request and returns the raw response.
    """
    try:
        outgoing = next(flow)
        while True:
            try:
                response = await send(outgoing)
            except MrsDeployError as err:
                outgoing = flow.throw(err)  # the flow may recover (a failed refresh)
            else:
                outgoing = flow.send(response)
    except StopIteration as done:
        result: RawResponse = done.value
        return result
    finally:
        flow.close()
