"""The call flow: which requests to send for one API call, including login and token renewal.

The flow is a generator that yields :class:`~airflow_provider.api.exchange.Outgoing` requests
and receives :class:`~airflow_provider.api.exchange.RawResponse` answers, without doing I/O
itself. Blocking and async transports drive the same generator, so the authentication rules
(when to log in, refresh, retry once on 401) exist exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from typing import Protocol

from airflow_provider.api import calls
from airflow_provider.api.body import RequestBody
from airflow_provider.api.calls import ApiRequest
from airflow_provider.api.errors import (
    MrsDeployApiError,
    MrsDeployAuthError,
    MrsDeployError,
    error_from_response,
    redirect_error,
)
from airflow_provider.api.exchange import Flow, Outgoing, RawResponse
from airflow_provider.api.headers import header_value
from airflow_provider.api.logs import LogLike
from airflow_provider.api.parsers import decode_json, parse_token_pair
from airflow_provider.api.tokens import TokenState

CHECK_CREDENTIALS = "check the connection's login/password or bearer token"


class Credentials(Protocol):
    """Where to log in and with what: the values the flow reads, nothing else.

    A structural type: the hook's connection settings fit, as does any object with these
    attributes, so the flow depends on no connection or framework type.
    """

    @property
    def base_url(self) -> str:
        """The server's base URL, named in messages."""
        ...

    @property
    def username(self) -> str | None:
        """Login name, for password authentication."""
        ...

    @property
    def password(self) -> str | None:
        """Password, for password authentication."""
        ...

    @property
    def bearer_token(self) -> str | None:
        """A supplied access token used instead of logging in, or None."""
        ...


class Authenticator:
    """Adds authentication to a request: token from cache, refresh, login, one retry on 401.

    :param credentials: where and how to authenticate (the connection settings fit).
    :param tokens: the token pair of this server and credentials (shared between calls).
    :param log: where to log renewals (never tokens or bodies).
    :param clock: epoch seconds source.
    """

    def __init__(
        self,
        credentials: Credentials,
        tokens: TokenState,
        log: LogLike,
        clock: Callable[[], float] = time.time,
    ):
        self.credentials = credentials
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
            if self.credentials.bearer_token is not None:
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
        """Send one request; a redirect is an error, never followed."""
        response = yield outgoing
        if 300 <= response.status < 400:
            request = outgoing.request
            raise redirect_error(
                response.status,
                header_value(response.headers, "Location"),
                request.method,
                request.path,
                self.credentials.base_url,
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
            f"{what} on {self.credentials.base_url} ({error.message}); {CHECK_CREDENTIALS}",
            status_code=error.status_code,
            method=error.method,
            path=error.path,
            exception_type=error.exception_type,
        )

    def _token(self, *, renew: bool) -> Generator[Outgoing, RawResponse, str]:
        """Return an access token, refreshing or logging in when needed.

        :param renew: the server refused the cached token: do not trust it even if unexpired.
        """
        if self.credentials.bearer_token is not None:
            return self.credentials.bearer_token
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
        username = self.credentials.username or ""
        base_url = self.credentials.base_url
        request = calls.login(username, self.credentials.password or "")
        response = yield from self._send(Outgoing(request))
        if 400 <= response.status < 500:
            # Never "not found" or "bad request" of the call being made: the login failed.
            error = self._error(request, response)
            if response.status in (400, 401, 403):
                what = f"login as {username!r} on {base_url} was refused"
                fix = CHECK_CREDENTIALS
            else:
                what = f"the login endpoint of {base_url} answered {response.status}"
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
        self.log.info("Logged in to %s as %s", base_url, username)
        return self._store(response)

    def _store(self, response: RawResponse) -> str:
        now = self.clock()
        pair = parse_token_pair(decode_json(response.body, "token response"), now)
        self.tokens.store(pair, now)
        return pair.access_token
