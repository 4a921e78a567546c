"""Driving the call flow over a transport, blocking or async.

The flow itself (which requests one API call takes: login, refresh, one retry on 401) is the
protocol's, in :mod:`airflow_provider.api.auth_flow`, and does no I/O. These drivers send what
it yields with a real transport and feed the answers back. The flow's names are re-exported
here for code that imports them from this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from airflow_provider.api.auth_flow import CHECK_CREDENTIALS, Authenticator, Credentials
from airflow_provider.api.errors import MrsDeployError
from airflow_provider.api.exchange import Flow, Outgoing, RawResponse

__all__ = [
    "CHECK_CREDENTIALS",
    "Authenticator",
    "Credentials",
    "Flow",
    "Outgoing",
    "RawResponse",
    "adrive",
    "drive",
]


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
