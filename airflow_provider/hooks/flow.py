"""Driving the call flow over a transport, blocking or async.

The flow itself (which requests one API call takes: login, refresh, one retry on 401) is the
protocol's, in :mod:`airflow_provider.api.auth_flow`, and does no I/O. These drivers send what
it yields with a real transport and feed the answers back; when the flow wants a token from an
outside issuer (Azure AD), they ask the issuer given to them. The flow's names are re-exported
here for code that imports them from this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from airflow_provider.api.auth_flow import (
    CHECK_CREDENTIALS,
    Answer,
    Authenticator,
    AuthFlow,
    Credentials,
)
from airflow_provider.api.errors import MrsDeployConfigurationError, MrsDeployError
from airflow_provider.api.exchange import Flow, Outgoing, RawResponse
from airflow_provider.api.tokens import IssuedToken, TokenWanted

__all__ = [
    "CHECK_CREDENTIALS",
    "Authenticator",
    "Credentials",
    "Flow",
    "Outgoing",
    "RawResponse",
    "TokenIssuer",
    "adrive",
    "drive",
]


class TokenIssuer(Protocol):
    """Issues access tokens for a flow (``hooks.azure_ad.AzureAdIssuer`` is one)."""

    def issue(self, wanted: TokenWanted) -> IssuedToken:
        """A token, blocking."""
        ...

    async def aissue(self, wanted: TokenWanted) -> IssuedToken:
        """A token, without blocking the event loop."""
        ...


def _no_issuer() -> MrsDeployConfigurationError:
    return MrsDeployConfigurationError("the call wants an issued token but no issuer is set")


def drive(
    flow: AuthFlow | Flow,
    send: Callable[[Outgoing], RawResponse],
    issuer: TokenIssuer | None = None,
) -> RawResponse:
    """Run a flow with a blocking transport.

    :param flow: the flow generator.
    :param send: sends one request and returns the raw response.
    :param issuer: answers the flow's token wishes (Azure AD); None when it makes none.
    """
    try:
        message = next(flow)
        while True:
            answer: Answer
            try:
                if isinstance(message, TokenWanted):
                    if issuer is None:
                        raise _no_issuer()
                    answer = issuer.issue(message)
                else:
                    answer = send(message)
            except MrsDeployError as err:
                message = flow.throw(err)  # the flow may recover (a failed refresh)
            else:
                message = flow.send(answer)  # type: ignore[arg-type]
    except StopIteration as done:
        result: RawResponse = done.value
        return result
    finally:
        flow.close()


async def adrive(
    flow: AuthFlow | Flow,
    send: Callable[[Outgoing], Awaitable[RawResponse]],
    issuer: TokenIssuer | None = None,
) -> RawResponse:
    """Run a flow with an async transport.

    :param flow: the flow generator.
    :param send: sends one request and returns the raw response.
    :param issuer: answers the flow's token wishes (Azure AD); None when it makes none.
    """
    try:
        message = next(flow)
        while True:
            answer: Answer
            try:
                if isinstance(message, TokenWanted):
                    if issuer is None:
                        raise _no_issuer()
                    answer = await issuer.aissue(message)
                else:
                    answer = await send(message)
            except MrsDeployError as err:
                message = flow.throw(err)  # the flow may recover (a failed refresh)
            else:
                message = flow.send(answer)  # type: ignore[arg-type]
    except StopIteration as done:
        result: RawResponse = done.value
        return result
    finally:
        flow.close()
