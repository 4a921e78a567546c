"""A TCP proxy that holds each direction's bytes for half a round trip: a network link on loopback.

``python -m benchmarks.latency_proxy --listen-port 0 --target-port 8000 --delay-ms 2`` accepts
connections, opens one to the target for each, and forwards bytes both ways, each chunk written
``delay-ms / 2`` after it arrived (on average: see ``Clock``). A request and its response
therefore take ``delay-ms`` longer than on loopback, as over a link with that round trip, while
bandwidth is not limited: chunks keep arriving while earlier ones wait, so a connection streams
as fast as before, only later. Order is kept per direction, EOF and close follow the data sent
before them, and any number of keep-alive connections run side by side. Opening a connection is
not delayed (keep-alive clients pay that once).

It prints ``listening on http://HOST:PORT`` once it accepts connections and stops on SIGTERM or
SIGINT, then prints on stderr how many connections and bytes it forwarded.

Event-loop timers are only as fine as the loop's clock (uvloop's counts whole milliseconds, the
size of the delays emulated here), so a thread blocked on a condition with a timeout, which wakes
within tens of microseconds, says when held bytes are due; the event loop (uvloop when installed,
to keep the proxy's own CPU low) does all the reading and writing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import signal
import socket
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, cast

HIGH_WATER = 1 << 20  # bytes held in one direction before its sender is paused
LOW_WATER = 1 << 18  # ... and resumed


class Clock:
    """Runs ``flush()`` of a side on the event loop when its held bytes are due.

    One thread keeps a heap of deadlines, sleeps on a condition until the earliest, and hands
    every side then due to the loop in one ``call_soon_threadsafe``. Waking a thread and then
    the loop takes time (about 0.1-0.3 ms on a busy machine, and more while the loop is busy
    with other connections), so the clock learns that lateness and wakes that much early:
    ``lead`` is a running mean of how late the loop got to the callback when aimed at the
    deadline itself, and sides release what is due within ``lead``. Delays are then right on
    average, with some jitter either side, as on a real link.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, max_lead: float) -> None:
        self.lead = 0.0  # seconds
        self._max_lead = max_lead
        self._loop = loop
        self._heap: list[tuple[float, int, Side]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="latency-proxy-clock", daemon=True)
        self._thread.start()

    def at(self, when: float, side: Side) -> None:
        """Flush ``side`` at ``when`` (``time.monotonic()`` seconds)."""
        with self._condition:
            heapq.heappush(self._heap, (when, next(self._order), side))
            if self._heap[0][2] is side:
                self._condition.notify()

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify()
        self._thread.join(5)

    def _run(self) -> None:
        with self._condition:
            while not self._stopped:
                if not self._heap:
                    self._condition.wait()
                    continue
                lead = self.lead
                wake = self._heap[0][0] - lead
                wait = wake - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                now = time.monotonic()
                due = []
                while self._heap and self._heap[0][0] - lead <= now:
                    due.append(heapq.heappop(self._heap)[2])
                try:
                    self._loop.call_soon_threadsafe(self._flush, due, wake + lead)
                except RuntimeError:  # the loop is closed: nothing is left to deliver
                    return

    def _flush(self, sides: list[Side], deadline: float) -> None:
        # How late the loop would have been, aimed at the deadline itself.
        lateness = time.monotonic() - deadline + self.lead
        self.lead = min(self._max_lead, max(0.0, 0.9 * self.lead + 0.1 * lateness))
        for side in sides:
            side.scheduled = False
            side.flush()


class Stats:
    """What went through the proxy."""

    def __init__(self) -> None:
        self.connections = 0
        self.bytes_up = 0  # client to target
        self.bytes_down = 0  # target to client


_EOF = b""  # held in place of data: the sender half-closed
_CLOSE = None  # held in place of data: the sender's connection is gone


class Side(asyncio.Protocol):
    """One end of a proxied connection: what it receives reaches its peer half a round trip on."""

    def __init__(
        self,
        delay: float,
        clock: Clock,
        stats: Stats,
        upstream: bool,
        on_connected: Callable[[Side], None] | None = None,
    ) -> None:
        self.delay = delay
        self.clock = clock
        self.stats = stats
        self.upstream = upstream  # this side talks to the target
        self.on_connected = on_connected
        self.transport: asyncio.Transport | None = None
        self.peer: Side | None = None
        self.held: deque[tuple[float, bytes | None]] = deque()
        self.held_bytes = 0
        self.eof_sent = False  # EOF written to this side's transport
        self.scheduled = False  # the clock will call flush()
        self._blocked: set[str] = set()  # reasons this side's reading is paused

    # -- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass it
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.on_connected is not None:
            self.on_connected(self)

    def data_received(self, data: bytes) -> None:
        if self.upstream:
            self.stats.bytes_down += len(data)
        else:
            self.stats.bytes_up += len(data)
        self.held_bytes += len(data)
        self._hold(data)
        if self.held_bytes > HIGH_WATER:
            self.block("held")

    def eof_received(self) -> bool:
        self._hold(_EOF)
        return True  # keep the other direction open until the peer half-closes too

    def connection_lost(self, exc: Exception | None) -> None:
        self._hold(_CLOSE)

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.block("peer-writing")

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.unblock("peer-writing")

    # -- holding and releasing -------------------------------------------------------------

    def _hold(self, data: bytes | None) -> None:
        self.held.append((time.monotonic() + self.delay, data))
        self._schedule()

    def _schedule(self) -> None:
        if self.held and not self.scheduled:
            self.scheduled = True
            self.clock.at(self.held[0][0], self)

    def flush(self) -> None:
        """Write what is due to the peer, oldest first; wait for the rest."""
        peer = self.peer
        if peer is None or peer.transport is None:
            return  # not linked yet: flushed again once both connections are open
        now = time.monotonic() + self.clock.lead
        while self.held and self.held[0][0] <= now:
            _, data = self.held.popleft()
            target = peer.transport
            if data is _CLOSE:
                target.close()
                continue
            if data == _EOF:
                if not target.is_closing():
                    peer.eof_sent = True
                    if target.can_write_eof():
                        target.write_eof()
                    if self.eof_sent:  # both directions are half-closed
                        target.close()
                        if self.transport is not None:
                            self.transport.close()
                continue
            assert data is not None
            self.held_bytes -= len(data)
            if not target.is_closing():
                target.write(data)
        if self.held_bytes < LOW_WATER:
            self.unblock("held")
        self._schedule()

    def block(self, reason: str) -> None:
        if not self._blocked and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self._blocked.add(reason)

    def unblock(self, reason: str) -> None:
        if reason not in self._blocked:
            return
        self._blocked.discard(reason)
        if not self._blocked and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


async def serve(
    listen_host: str,
    listen_port: int,
    target_host: str,
    target_port: int,
    delay_ms: float,
    on_ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> Stats:
    """Proxy until ``stop`` is set; ``on_ready`` is called with the port it listens on."""
    loop = asyncio.get_running_loop()
    delay = delay_ms / 2000  # half the round trip, in seconds
    clock = Clock(loop, max_lead=delay / 2)
    stats = Stats()
    stop = stop or asyncio.Event()
    sides: weakref.WeakSet[Side] = weakref.WeakSet()  # open ones, to close them at the end
    connecting: set[asyncio.Task[None]] = set()

    async def connect_upstream(client: Side) -> None:
        try:
            _, target = await loop.create_connection(
                lambda: Side(delay, clock, stats, upstream=True), target_host, target_port
            )
        except OSError:
            if client.transport is not None:
                client.transport.close()
            return
        sides.add(target)
        client.peer, target.peer = target, client
        # Whatever the client sent meanwhile (even a close) now goes on, on its schedule.
        client.flush()
        target.flush()

    def accepted(client: Side) -> None:
        # What the client sends before its connection to the target is open stays held.
        stats.connections += 1
        task = loop.create_task(connect_upstream(client))
        connecting.add(task)
        task.add_done_callback(connecting.discard)

    def accept() -> Side:
        client = Side(delay, clock, stats, upstream=False, on_connected=accepted)
        sides.add(client)
        return client

    server = await loop.create_server(accept, listen_host, listen_port, backlog=1024)
    port = int(server.sockets[0].getsockname()[1])
    if on_ready is not None:
        on_ready(port)
    try:
        await stop.wait()
    finally:
        server.close()
        for side in list(sides):
            if side.transport is not None:
                side.transport.close()
        await server.wait_closed()
        clock.stop()
    return stats


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run on uvloop when it is installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True, help="round trip to add, ms")
    args = parser.parse_args()
    # The clock thread must get the interpreter promptly when the loop is busy.
    sys.setswitchinterval(0.0005)

    async def proxy() -> Stats:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        return await serve(
            args.listen_host,
            args.listen_port,
            args.target_host,
            args.target_port,
            args.delay_ms,
            on_ready=lambda port: print(
                f"listening on http://{args.listen_host}:{port}", flush=True
            ),
            stop=stop,
        )

    stats = run(proxy())
    print(
        f"latency proxy: {stats.connections} connections, {stats.bytes_up:,} bytes up, "
        f"{stats.bytes_down:,} bytes down",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    main()
