"""Total deadlines for blocking HTTP requests.

``requests`` bounds each socket operation, not a request: a server that sends one byte every
few seconds, in its headers or its body, holds a call for as long as it likes. Here a single
daemon thread watches the deadlines of the requests in flight and, when one passes, shuts the
request's socket down; the blocked read then returns at once, and the transport reports a
timeout (:attr:`Guard.fired`).

A request's connection is found through the thread that sends it: the transport arms a
:class:`Guard` for the current thread, and the connection classes of the guarded session
(:func:`guarded_adapter`) attach themselves to it when they send a request. A guard is always
disarmed before its connection can go back to the pool, so a late firing can never hit the
next request on a reused connection.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection

#: When a guard fires while its connection has no socket yet (still connecting), it fires again
#: this many seconds later; the connect timeout bounds that phase anyway.
REFIRE_DELAY = 0.05

_current = threading.local()


class Guard:
    """The deadline of one request (or one stretch of a download) on one connection.

    :param watchdog: the thread that fires it.
    """

    def __init__(self, watchdog: Watchdog, seconds: float, *, restart_on_response: bool = False):
        self._watchdog = watchdog
        self._lock = threading.Lock()
        self._armed = False
        self._connection: Any = None
        self.seconds = seconds
        self.restart_on_response = restart_on_response
        self.deadline = 0.0
        self.fired = False

    def attach(self, connection: Any) -> None:
        """The connection whose socket is shut when the guard fires."""
        with self._lock:
            self._connection = connection

    def arm(self) -> None:
        """Fire :attr:`seconds` from now unless disarmed first (re-arming moves the deadline)."""
        with self._lock:
            self._armed = True
            self.deadline = time.monotonic() + self.seconds
            deadline = self.deadline
        self._watchdog.schedule(self, deadline, deadline)

    def disarm(self) -> None:
        """Never fire (from now on); safe to call more than once."""
        with self._lock:
            self._armed = False
            self._connection = None

    def fire(self, deadline: float) -> bool:
        """Shut the connection's socket if the guard is still armed for ``deadline``.

        :returns: True when it should be tried again shortly (no socket yet).
        """
        with self._lock:
            if not self._armed or deadline != self.deadline:
                return False
            self.fired = True
            sock = getattr(self._connection, "sock", None)
            if sock is None:
                return True
            with contextlib.suppress(OSError):  # already closed: the read has ended anyway
                if isinstance(sock, socket.socket):
                    # The plain socket's shutdown, also for TLS: ``SSLSocket.shutdown`` would
                    # drop the TLS state under the thread still reading through it.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            return False


class Watchdog:
    """One daemon thread firing :class:`Guard` objects at their deadlines (earliest first)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Guard, float]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, guard: Guard, when: float, deadline: float) -> None:
        """Fire ``guard`` at ``when`` (monotonic seconds) unless it was disarmed or re-armed
        since it was armed for ``deadline``."""
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._order), guard, deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="mrsdeploy-request-deadlines", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is guard:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                _, _, guard, deadline = heapq.heappop(self._heap)
            if guard.fire(deadline):
                self.schedule(guard, time.monotonic() + REFIRE_DELAY, deadline)


WATCHDOG = Watchdog()


@contextmanager
def guarded(seconds: float, *, restart_on_response: bool = False) -> Iterator[Guard]:
    """Arm a guard for the requests this thread sends in the block; disarmed on exit.

    :param seconds: the total time allowed.
    :param restart_on_response: count the time from the end of the upload rather than from
        the start (a large request body may take long to send; the socket timeouts bound each
        write meanwhile).
    """
    guard = Guard(WATCHDOG, seconds, restart_on_response=restart_on_response)
    previous = getattr(_current, "guard", None)
    _current.guard = guard
    if not restart_on_response:  # else armed when the answer is awaited (``getresponse``)
        guard.arm()
    try:
        yield guard
    finally:
        guard.disarm()
        _current.guard = previous


def guard_connection(connection: Any, seconds: float) -> Guard:
    """Arm a guard on a known connection (a download's), outside :func:`guarded`.

    :param connection: a urllib3 connection, or None (then the guard only records the time).
    :param seconds: the time allowed.
    """
    guard = Guard(WATCHDOG, seconds)
    guard.attach(connection)
    guard.arm()
    return guard


class _Attaching:
    """Mixin for urllib3 connections: join the current thread's guard when sending."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        guard = getattr(_current, "guard", None)
        if guard is not None:
            guard.attach(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        guard = getattr(_current, "guard", None)
        if guard is not None and guard.restart_on_response:
            guard.arm()
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _GuardedHTTPConnection(_Attaching, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_Attaching, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


_POOLS = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


class GuardedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections attach to the sending thread's guard."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if manager.pool_classes_by_scheme.get("http") is HTTPConnectionPool:  # not SOCKS
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager
