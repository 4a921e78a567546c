"""Streaming one file, resuming where it stopped when the connection breaks mid-body.

What to ask for after an interruption, whether the answer continues the same version of the
file, and whether a body that ended is the end of the file are decided by
:class:`~airflow_provider.api.resume.ResumeState` (no I/O). :class:`ResumableDownload`
(blocking) and :class:`AsyncResumableDownload` (event loop) only open responses, read chunks
and sleep, so both resume by the same rules. The decision types are re-exported here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping

from airflow_provider.api.errors import MrsDeployApiError, MrsDeployConnectionError
from airflow_provider.api.exchange import RawResponse
from airflow_provider.api.resume import FileIdentity, Resume, ResumeState
from airflow_provider.hooks.transport_async import aiter_stream
from airflow_provider.hooks.transport_sync import iter_stream

__all__ = [
    "AsyncOpener",
    "AsyncPreparer",
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
                    state.ended()  # a range short of the file's end resumes like a break
                    break
                except MrsDeployConnectionError as err:
                    _close_stream(response)
                    response = None
                    plan = state.interrupted(err)
                    self.sleep(plan.wait)
                    if plan.headers is not None:
                        try:
                            response = self.open_response(plan.headers)
                        except MrsDeployApiError as refused:
                            state.refused(refused)
                            raise
                        state.resumed(response)
        finally:
            _close_stream(response)
        state.finished()


#: Prepares an async download when its first chunk is asked for: the opener and the state.
AsyncPreparer = Callable[[], Awaitable[tuple[AsyncOpener, ResumeState]]]


class AsyncResumableDownload:
    """Iterate over one file's bytes on the event loop, resuming after interruptions.

    The same rules as :class:`ResumableDownload`, with an async opener and ``sleep``. The opener
    and the state come from ``prepare``, awaited when the first chunk is asked for, so that, as
    with a generator, nothing (checking the request, looking up the connection) happens before.

    An async iterator class rather than an async generator: asyncio registers every async
    generator when it first runs and finalizes it when it ends, which costs more than reading a
    small file that has already arrived, and a collect reads thousands of them.

    :param prepare: returns the opener (see :class:`ResumableDownload`) and the download's state.
    :param chunk_size: bytes per chunk (at most).
    :param sleep: waits between attempts (replaceable in tests).
    :param read_body: reads the body of an open response (the transport's ``aiter_stream``).
    """

    def __init__(
        self,
        prepare: AsyncPreparer,
        *,
        chunk_size: int,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        read_body: AsyncBodyReader = aiter_stream,
    ):
        self.prepare = prepare
        self.chunk_size = chunk_size
        self.sleep = sleep
        self.read_body = read_body
        self._open: AsyncOpener | None = None
        self._state: ResumeState | None = None
        self._response: RawResponse | None = None
        self._body: AsyncIterator[bytes] | None = None
        self._over = False

    def __aiter__(self) -> AsyncResumableDownload:
        return self

    async def __anext__(self) -> bytes:
        if self._over:
            raise StopAsyncIteration
        try:
            if self._state is None:
                self._open, self._state = await self.prepare()
                await self._start({})
            state = self._state
            while True:
                body = self._body
                try:
                    if body is None:  # the last interruption left nothing to ask for
                        raise StopAsyncIteration
                    try:
                        chunk = await body.__anext__()
                    except StopAsyncIteration:
                        state.ended()  # a range short of the file's end resumes like a break
                        raise
                except MrsDeployConnectionError as err:
                    self._drop_response()
                    plan = state.interrupted(err)
                    await self.sleep(plan.wait)
                    if plan.headers is not None:
                        await self._start(plan.headers, resumed=True)
                    continue
                fresh = state.deliver(chunk)
                if fresh is not None:
                    return fresh
        except StopAsyncIteration:
            self._over = True
            self._drop_response()
            self._state.finished()  # type: ignore[union-attr]
            raise
        except BaseException:
            self._over = True
            self._drop_response()
            raise

    async def aclose(self) -> None:
        """Stop early: the open response, if any, is closed."""
        self._over = True
        self._drop_response()

    async def _start(self, headers: Mapping[str, str], *, resumed: bool = False) -> None:
        """Open a response (the first, or a resume asking for ``headers``) and check it."""
        assert self._open is not None and self._state is not None
        state = self._state
        try:
            response = self._response = await self._open(headers)
        except MrsDeployApiError as refused:
            if resumed:
                state.refused(refused)
            raise
        if resumed:
            state.resumed(response)
        else:
            state.started(response)
        self._body = self.read_body(
            response, self.chunk_size, state.method, state.path, stall_timeout=state.stall_timeout
        )

    def _drop_response(self) -> None:
        response, self._response, self._body = self._response, None, None
        _close_stream(response)
