"""Streaming one file, resuming where it stopped when the connection breaks mid-body.

What to ask for after an interruption, and whether the answer continues the file, is decided by
:class:`~airflow_provider.api.resume.ResumeState` (no I/O). :class:`ResumableDownload`
(blocking) and :class:`AsyncResumableDownload` (event loop) only open responses, read chunks
and sleep, so both resume by the same rules. The decision types are re-exported here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping

from airflow_provider.api.errors import MrsDeployConnectionError
from airflow_provider.api.exchange import RawResponse
from airflow_provider.api.resume import FileIdentity, Resume, ResumeState
from airflow_provider.hooks.transport_async import aiter_stream
from airflow_provider.hooks.transport_sync import iter_stream

__all__ = [
    "AsyncOpener",
    "AsyncResumableDownload",
    "FileIdentity",
    "Opener",
    "ResumableDownload",
    "Resume",
    "ResumeState",
]

#: Opens the file's response; called with extra headers (empty, or ``Range``/``If-Range``).
Opener = Callable[[Mapping[str, str]], RawResponse]
#: The same, on the event loop.
AsyncOpener = Callable[[Mapping[str, str]], Awaitable[RawResponse]]
#: Reads an open response's body in chunks (the transport's ``iter_stream``).
BodyReader = Callable[..., Iterator[bytes]]
#: The same, on the event loop (the transport's ``aiter_stream``).
AsyncBodyReader = Callable[..., AsyncIterator[bytes]]


def _close_stream(response: RawResponse | None) -> None:
    if response is not None and response.stream is not None:
        response.stream.close()


class ResumableDownload:
    """Iterate over one file's bytes, resuming after interruptions (blocking).

    :param open_response: sends the GET (with the hook's retries, login and status mapping) and
        returns the successful streamed response.
    :param state: the download's bookkeeping (limits, retry policy, log).
    :param chunk_size: bytes per chunk (at most).
    :param sleep: waits between attempts (replaceable in tests).
    :param read_body: reads the body of an open response (the transport's).
    """

    def __init__(
        self,
        open_response: Opener,
        state: ResumeState,
        *,
        chunk_size: int,
        sleep: Callable[[float], None] = time.sleep,
        read_body: BodyReader = iter_stream,
    ):
        self.open_response = open_response
        self.state = state
        self.chunk_size = chunk_size
        self.sleep = sleep
        self.read_body = read_body

    def __iter__(self) -> Iterator[bytes]:
        state = self.state
        first = self.open_response({})
        response: RawResponse | None = first
        try:
            state.started(first)
            while response is not None:
                try:
                    for chunk in self.read_body(
                        response,
                        self.chunk_size,
                        state.method,
                        state.path,
                        stall_timeout=state.stall_timeout,
                    ):
                        fresh = state.deliver(chunk)
                        if fresh is not None:
                            yield fresh
                    break
                except MrsDeployConnectionError as err:
                    _close_stream(response)
                    response = None
                    plan = state.interrupted(err)
                    self.sleep(plan.wait)
                    if plan.headers is not None:
                        response = self.open_response(plan.headers)
                        state.resumed(response)
        finally:
            _close_stream(response)
        state.finished()


class AsyncResumableDownload:
    """Iterate over one file's bytes on the event loop, resuming after interruptions.

    The same parameters as :class:`ResumableDownload`, with an async ``open_response`` and
    ``sleep``.
    """

    def __init__(
        self,
        open_response: AsyncOpener,
        state: ResumeState,
        *,
        chunk_size: int,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        read_body: AsyncBodyReader = aiter_stream,
    ):
        self.open_response = open_response
        self.state = state
        self.chunk_size = chunk_size
        self.sleep = sleep
        self.read_body = read_body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        state = self.state
        first = await self.open_response({})
        response: RawResponse | None = first
        try:
            state.started(first)
            while response is not None:
                try:
                    async for chunk in self.read_body(
                        response,
                        self.chunk_size,
                        state.method,
                        state.path,
                        stall_timeout=state.stall_timeout,
                    ):
                        fresh = state.deliver(chunk)
                        if fresh is not None:
                            yield fresh
                    break
                except MrsDeployConnectionError as err:
                    _close_stream(response)
                    response = None
                    plan = state.interrupted(err)
                    await self.sleep(plan.wait)
                    if plan.headers is not None:
                        response = await self.open_response(plan.headers)
                        state.resumed(response)
        finally:
            _close_stream(response)
        state.finished()
