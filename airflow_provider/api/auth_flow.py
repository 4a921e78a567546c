"""The call flow: which requests to send for one API call, including login and token renewal.

The flow is a generator that yields :class:`~airflow_provider.api.exchange.Outgoing` requests
and receives :class:`~airflow_provider.api.exchange.RawResponse` answers, without doing I/O
itself. Blocking and async transports drive the same generator, so the authentication rules
(when to log in, refresh, retry once on 401) exist exactly once.

When the tokens come from an issuer other than the server (Azure AD), the flow yields a
:class:`~airflow_provider.api.tokens.TokenWanted` instead of a login request, and the driver
answers it with an :class:`~airflow_provider.api.tokens.IssuedToken`: when to ask, and the one
renewal after a 401, stay the flow's.
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
    MrsDeployProtocolError,
    error_from_response,
    redirect_error,
)
from airflow_provider.api.exchange import Outgoing, RawResponse
from airflow_provider.api.headers import header_value
from airflow_provider.api.identifiers import token_problem
from airflow_provider.api.logs import LogLike
from airflow_provider.api.models import TokenPair
from airflow_provider.api.parsers import decode_json, parse_token_pair
from airflow_provider.api.tokens import IssuedToken, TokenState, TokenWanted

CHECK_CREDENTIALS = "check the connection's login/password or bearer token"
CHECK_ISSUER = (
    "check the connection's Azure AD extras (resource or scope, tenant_id, client_id) and that "
    "the server accepts tokens of that audience and issuer"
)

#: What a flow yields (requests, or a wish for an issued token) and is sent back.
Message = Outgoing | TokenWanted
Answer = RawResponse | IssuedToken
#: A flow that may ask for issued tokens: drive it with ``hooks.flow.drive``/``adrive``.
AuthFlow = Generator[Message, Answer, RawResponse]


def informational_error(status: int, what: str, base_url: str) -> MrsDeployProtocolError:
    """The error for a request answered with an informational (``1xx``) status.

    The web node never answers so (the provider asks for no protocol switch and sends no
    ``Expect``), so the status more likely comes from something in between: a proxy, load
    balancer or TLS terminator that is misconfigured, or a server that is not the web node.

    :param status: the status received.
    :param what: the request, ``METHOD /path``.
    :param base_url: the server's base URL.
    """
    return MrsDeployProtocolError(
        f"{what} -> the server at {base_url} answered with the unexpected informational status "
        f"{status} instead of a final answer; something between Airflow and the web node (a "
        "proxy, load balancer or TLS terminator) may be misbehaving, or the connection may "
        "point at another service: check the connection's host, port and any proxy"
    )


class TokenRenewal(Exception):
    """The call needs a new token (the cached one is stale, or the server refused it with a
    401): run it again holding the token cache's renewal lock (``locked=True``).

    Raised out of the flow instead of renewing inside it whenever the driver does not hold the
    lock. Calls sharing a token cache are often refused together (the token expired early, the
    server restarted), and on this API a refresh ends the pair it replaces: two renewals at once
    make each other's new token stale, and each call then fails as if the credentials were
    wrong. Inside the lock the flow renews only when the cached token is still unusable or still
    the refused one, and otherwise takes the token another call has just obtained.

    Internal: the driver always catches it. The token is kept out of the message.

    :param refused: the token the server refused, or None when the cached one is only stale.
    """

    def __init__(self, refused: str | None) -> None:
        super().__init__("the call needs a new access token")
        self.refused = refused


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
    :param issuer: who issues the tokens when it is not the server (e.g. "Azure AD (...)"),
        named in messages; the flow then yields :class:`TokenWanted` instead of logging in.
    """

    def __init__(
        self,
        credentials: Credentials,
        tokens: TokenState,
        log: LogLike,
        clock: Callable[[], float] = time.time,
        *,
        issuer: str | None = None,
    ):
        self.credentials = credentials
        self.tokens = tokens
        self.log = log
        self.clock = clock
        self.issuer = issuer

    def call(
        self,
        request: ApiRequest,
        body: RequestBody | None = None,
        headers: Mapping[str, str] | None = None,
        refused: str | None = None,
        locked: bool = False,
    ) -> AuthFlow:
        """Flow for one API call; returns the successful response or raises the mapped error.

        :param request: the API request.
        :param body: raw body, for ``start_batch``.
        :param headers: extra request headers, sent on every attempt.
        :param refused: the token an earlier run of this call was refused with: this run is
            the call's last chance (another 401 is an error).
        :param locked: the driver holds the token cache's renewal lock: renew here when needed.
        :raises TokenRenewal: a new token is needed and the driver does not hold the lock.
        """
        extra = dict(headers or {})
        token = (yield from self._token(refused, locked)) if request.authenticated else None
        response = yield from self._send(Outgoing(request, token, body, extra))
        if response.status == 401 and request.authenticated:
            error = self._error(request, response)
            if self.credentials.bearer_token is not None:
                raise self._auth_error(error, "the server refused the bearer token")
            if body is not None and not body.replayable:
                raise self._auth_error(error, "the token was refused and the body cannot be resent")
            if refused is not None:
                raise self._auth_error(error, "the server refused a freshly issued token")
            self.log.info(
                "%s was refused (401); renewing the token and retrying once", request.describe
            )
            if not locked:
                raise TokenRenewal(token)
            token = yield from self._token(token, locked)
            response = yield from self._send(Outgoing(request, token, body, extra))
            if response.status == 401:
                raise self._auth_error(
                    self._error(request, response), "the server refused a freshly issued token"
                )
        if response.status >= 400:
            raise self._error(request, response)
        return response

    def _send(self, outgoing: Outgoing) -> Generator[Message, Answer, RawResponse]:
        """Send one request; a redirect is an error, never followed, and so is an answer with
        an informational (1xx) status.

        Only ``2xx`` may pass as success, and the callers map ``4xx``/``5xx`` to errors; a
        ``1xx`` is never this API's answer (nothing here asks to switch protocols or sends
        ``Expect``), and has no body: taken as success, a file list would read as empty and a
        cancel as done. It is refused here, in the flow both transports drive, so the blocking
        and the async path fail alike (each transport hands over the first ``1xx`` other than
        ``100 Continue``, which both skip).

        :raises MrsDeployProtocolError: for a ``1xx`` answer (not retried: nothing shows that
            sending the request again would be answered otherwise).
        """
        response = yield outgoing
        if not isinstance(response, RawResponse):
            raise TypeError(f"a request was answered with {type(response).__name__}")
        if response.status < 200:
            raise informational_error(
                response.status, outgoing.request.describe, self.credentials.base_url
            )
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
        fix = CHECK_CREDENTIALS if self.issuer is None else f"{CHECK_ISSUER} ({self.issuer})"
        return MrsDeployAuthError(
            f"{what} on {self.credentials.base_url} ({error.message}); {fix}",
            status_code=error.status_code,
            method=error.method,
            path=error.path,
            exception_type=error.exception_type,
        )

    def _token(self, refused: str | None, locked: bool) -> Generator[Message, Answer, str]:
        """Return an access token, refreshing or logging in when needed (and allowed).

        :param refused: a token the server refused: not used again even if unexpired (another
            token in the cache, renewed meanwhile by another call, is).
        :param locked: the driver holds the renewal lock (else a renewal is left to it).
        """
        if self.credentials.bearer_token is not None:
            return self.credentials.bearer_token
        cached = self.tokens.usable_token(self.clock())
        if cached is not None and cached != refused:
            return cached
        if not locked:
            raise TokenRenewal(refused)
        if self.issuer is not None:
            return (yield from self._issued(renew=refused is not None))
        refresh_token = self.tokens.refresh_token()
        if refresh_token is not None:
            token = yield from self._refresh(refresh_token)
            if token is not None:
                return token
            self.tokens.clear()
        return (yield from self._login())

    def _issued(self, renew: bool) -> Generator[Message, Answer, str]:
        """A token from the outside issuer, checked and stored like one the server issued."""
        issued = yield TokenWanted(renew=renew)
        if not isinstance(issued, IssuedToken):
            raise TypeError(f"a token wish was answered with {type(issued).__name__}")
        problem = token_problem(issued.access_token)
        if problem is not None:
            raise MrsDeployProtocolError(
                f"the access token from {self.issuer} cannot be sent as a bearer token: {problem}"
            )
        now = self.clock()
        self.tokens.store(TokenPair(issued.access_token, None, issued.expires_on), now)
        self.log.info(
            "Got an access token from %s, valid for %d s", self.issuer, issued.expires_on - now
        )
        return issued.access_token

    def _refresh(self, refresh_token: str) -> Generator[Message, Answer, str | None]:
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

    def _login(self) -> Generator[Message, Answer, str]:
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
        pair = parse_token_pair(decode_json(response.body, "token response", quote=False), now)
        self.tokens.store(pair, now)
        return pair.access_token
