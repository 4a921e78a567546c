"""One aiohttp session per event loop and connection, shared by every hook that uses it.

A triggerer runs every deferred wait as a task of one event loop, each with a hook of its own.
With a session per hook, a thousand waits hold a thousand connection pools, cookie jars, DNS
caches and sockets: tens of thousands of long-lived objects that every full garbage collection
walks while the loop stands still. One shared session keeps one pool of kept-alive connections
for all of them, bounded by ``transport_async.CONNECTION_LIMIT``.

A session belongs to the loop that created it, so it is never shared across loops. Hooks take a
use with :func:`acquire` and give it back with :func:`release`; the last release closes the
session. Two hooks share a session only when they agree on the server, the identity (so cookies
set for one login are never sent for another), TLS verification and the request timeout.

Two kinds of turns keep a crowd of waits from acting all at once in one loop:

* :func:`request_turn`: at most ``REQUEST_CONCURRENCY`` requests of a session in progress. A
  thousand polls falling due together otherwise all start at once, and each holds some fifty
  objects (its coroutines, aiohttp's request and response) until the server answers. The
  collections that run meanwhile move all of them to the oldest generation, and once enough
  have piled up there the interpreter runs a full collection, which stops the loop for as long
  as it takes to walk every object of the process. Waiting for its turn, a poll holds a
  handful of objects. No request waits longer than the connection's timeout for a turn.
* :func:`lookup_turn`: at most ``LOOKUP_CONCURRENCY`` first connection lookups of hooks at
  once. Airflow's async lookup does a fraction of a millisecond of blocking work before its
  first await; a thousand triggers starting together would otherwise do all of it in one
  iteration of the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections import deque
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import aiohttp

from airflow_provider.api.calls import ApiRequest
from airflow_provider.hooks import transport_async
from airflow_provider.hooks.settings import MrsDeployConnectionSettings, TransportConfig
from airflow_provider.hooks.transport_errors import Failure, connection_error

#: Requests of one shared session in progress at once; the others wait for a turn. Enough for a
#: server answering in 100 ms to serve 160 requests a second.
REQUEST_CONCURRENCY = 16

#: First connection lookups of hooks in progress at once in one loop.
LOOKUP_CONCURRENCY = 4


@dataclass(frozen=True)
class SessionKey:
    """What two hooks must have in common to share a session.

    :param base_url: the server.
    :param identity: digest of the credentials (login and password, bearer token or Azure AD
        credential: ``MrsDeployConnectionSettings.identity``), never a secret itself.
    :param transport: what the session is built from (TLS, timeout, proxies, headers).
    """

    base_url: str
    identity: str
    transport: TransportConfig

    @classmethod
    def of(cls, settings: MrsDeployConnectionSettings) -> SessionKey:
        """The key of a connection's settings."""
        return cls(settings.base_url, settings.identity, settings.transport)


class Turns:
    """At most ``limit`` holders at once; the others queue in order, each for a bounded time.

    Like ``asyncio.Semaphore``, but a wait ends with ``TimeoutError`` after ``timeout``
    seconds (``asyncio.timeout`` needs Python 3.11), and a waiter holds one future and one
    timer handle, nothing more.

    :param limit: holders at once.
    """

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    def take_free(self) -> bool:
        """Take a turn if one is free now (nobody queues while one is: see :meth:`give_back`);
        whether one was taken. Lets a caller skip awaiting :meth:`take` when none is needed."""
        if self._free > 0:
            self._free -= 1
            return True
        return False

    async def take(self, timeout: float | None = None) -> None:
        """Wait for a turn; give it back with :meth:`give_back`.

        :param timeout: seconds to wait at most, then ``TimeoutError``; None waits for ever.
        """
        if self.take_free():
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        expiry = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.give_back()  # handed a turn, then cancelled before using it
            raise
        finally:
            if expiry is not None:
                expiry.cancel()

    def give_back(self) -> None:
        """End a turn: the longest waiter still waiting gets it, else it becomes free."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # not timed out or cancelled
                waiter.set_result(None)
                return
        self._free += 1


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _RequestTurn:
    """One request's turn on a session, as an async context manager.

    Waiting longer than the connection's timeout fails the attempt like a request the server
    did not answer in time, marked as not sent, so that the retry policy may try again even a
    request that is not idempotent.
    """

    __slots__ = ("_request", "_settings", "_turns")

    def __init__(
        self, turns: Turns, settings: MrsDeployConnectionSettings, request: ApiRequest
    ) -> None:
        self._turns = turns
        self._settings = settings
        self._request = request

    async def __aenter__(self) -> None:
        if self._turns.take_free():
            return
        try:
            await self._turns.take(self._settings.timeout)
        except TimeoutError as err:
            raise connection_error(
                Failure.TIMEOUT, self._settings, self._request, err, may_have_been_sent=False
            ) from None

    async def __aexit__(self, *exc_info: object) -> None:
        self._turns.give_back()


@dataclass
class _Shared:
    """A session and how many hooks hold it."""

    session: aiohttp.ClientSession
    users: int


_Slot = tuple[asyncio.AbstractEventLoop, SessionKey]

#: Guards the registries: loops running in other threads have sessions of their own in them.
_LOCK = threading.Lock()
_SESSIONS: dict[_Slot, _Shared] = {}
_REQUEST_TURNS: weakref.WeakKeyDictionary[aiohttp.ClientSession, Turns] = (
    weakref.WeakKeyDictionary()
)
_LOOKUP_TURNS: dict[asyncio.AbstractEventLoop, Turns] = {}


async def acquire(settings: MrsDeployConnectionSettings) -> aiohttp.ClientSession:
    """The running loop's session for these settings, created on first use; one use taken.

    Give it back with :func:`release` (the hook does so in ``aclose``).

    :param settings: connection settings.
    """
    for ended in _forget_ended_loops():
        await _close(ended, None)
    slot = (asyncio.get_running_loop(), SessionKey.of(settings))
    shared = _take(slot)
    if shared is None:
        tls = await transport_async.tls_option(settings)
        # Another hook of this loop may have created it while the CA bundle was loading.
        shared = _take(slot) or _create(slot, transport_async.build_session(settings, tls))
    return shared.session


async def release(
    session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop | None = None
) -> None:
    """Give back one use of ``session``; the last use closes it.

    A session the registry no longer knows (its loop ended, or the registry was reset) belongs
    to nobody else, so it is closed too.

    :param session: from :func:`acquire`.
    :param loop: the loop it belongs to; the running loop when None.
    """
    owner = loop or asyncio.get_running_loop()
    if _give_back(session):
        await _close(session, owner)


def request_turn(
    session: aiohttp.ClientSession, settings: MrsDeployConnectionSettings, request: ApiRequest
) -> AbstractAsyncContextManager[Any]:
    """Hold it around one attempt of a request on ``session`` (never around a retry's wait).

    :param session: from :func:`acquire`; a session from elsewhere takes no turns.
    :param settings: connection settings (the longest wait for a turn is their timeout).
    :param request: the request, named in the error when no turn came in time.
    """
    turns = _REQUEST_TURNS.get(session)
    return contextlib.nullcontext() if turns is None else _RequestTurn(turns, settings, request)


@contextlib.asynccontextmanager
async def lookup_turn() -> Any:
    """Hold it around a hook's first connection lookup (the running loop's turns)."""
    turns = _lookup_turns(asyncio.get_running_loop())
    await turns.take()
    try:
        yield
    finally:
        turns.give_back()


def users_of(session: aiohttp.ClientSession) -> int:
    """How many uses of ``session`` are held (0 when the registry does not know it)."""
    with _LOCK:
        return next((s.users for s in _SESSIONS.values() if s.session is session), 0)


def forget_shared_sessions() -> None:
    """Drop every session from the registry (tests do so between cases).

    Nothing is closed here: a hook still holding a forgotten session closes it when it gives
    it back, and the next :func:`acquire` creates a new one.
    """
    with _LOCK:
        _SESSIONS.clear()
        _LOOKUP_TURNS.clear()


def _lookup_turns(loop: asyncio.AbstractEventLoop) -> Turns:
    with _LOCK:
        turns = _LOOKUP_TURNS.get(loop)
        if turns is None:
            for ended in [other for other in _LOOKUP_TURNS if other.is_closed()]:
                del _LOOKUP_TURNS[ended]
            turns = _LOOKUP_TURNS[loop] = Turns(LOOKUP_CONCURRENCY)
        return turns


def _take(slot: _Slot) -> _Shared | None:
    """The open session of ``slot`` with one more use, or None."""
    with _LOCK:
        shared = _SESSIONS.get(slot)
        if shared is None or shared.session.closed:
            return None
        shared.users += 1
        return shared


def _create(slot: _Slot, session: aiohttp.ClientSession) -> _Shared:
    """Register a new session with its first use (replacing one closed behind our back)."""
    shared = _Shared(session, users=1)
    with _LOCK:
        _SESSIONS[slot] = shared
        _REQUEST_TURNS[session] = Turns(REQUEST_CONCURRENCY)
    return shared


def _give_back(session: aiohttp.ClientSession) -> bool:
    """Take one use off ``session``; True when nobody uses it any more."""
    with _LOCK:
        for slot, shared in _SESSIONS.items():
            if shared.session is session:
                shared.users -= 1
                if shared.users > 0:
                    return False
                del _SESSIONS[slot]
                return True
    return True


def _forget_ended_loops() -> list[aiohttp.ClientSession]:
    """Drop the sessions of closed loops (a hook that never gave its use back); return them.

    Nothing can run on a closed loop any more, so they can only be marked closed.
    """
    with _LOCK:
        ended = [slot for slot in _SESSIONS if slot[0].is_closed()]
        return [_SESSIONS.pop(slot).session for slot in ended]


async def _close(session: aiohttp.ClientSession, owner: asyncio.AbstractEventLoop | None) -> None:
    """Close ``session`` on the loop it belongs to, as far as that loop allows.

    :param owner: that loop; None when it is known to be closed.
    """
    if session.closed:
        return
    if owner is asyncio.get_running_loop():
        await session.close()
    elif owner is not None and owner.is_running():
        # Still serving another thread: close it there, without waiting for it here.
        asyncio.run_coroutine_threadsafe(session.close(), owner)
    else:
        # Its loop has ended: mark it closed, best effort (its transports cannot be closed
        # through a loop that no longer runs; they go with the objects).
        with contextlib.suppress(Exception):
            await session.close()
