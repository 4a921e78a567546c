"""A small TCP proxy for fault-injection tests: faults the reference server cannot produce.

It listens on 127.0.0.1 (free port) and forwards every connection to a target read at connect
time (so it follows a server restarted on another port). Tests switch its behaviour while it
runs:

* :meth:`FaultProxy.pass_through`: forward untouched;
* :meth:`FaultProxy.reset_after`: let N bytes of a response through, then reset the connection
  (``RST``), optionally only for requests whose request line matches a pattern;
* :meth:`FaultProxy.drop_connections`: accept new connections and reset them at once;
* :meth:`FaultProxy.delay`: hold responses back for a while (to provoke client timeouts).

Faults with ``times`` apply to that many connections (or requests), then the proxy passes
through again. The proxy runs its own event loop in a thread, so blocking clients (``requests``)
and ``asyncio`` clients in the test's thread both work through it. It is HTTP-aware only in
that it looks for a request line in what the client sends; it never changes a byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

Target = Callable[[], tuple[str, int]]

_REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]\r?$", re.MULTILINE)
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3}) ", re.MULTILINE)


@dataclass
class _Rule:
    """The active fault. ``times`` None means every time."""

    kind: str
    times: int | None = None
    response_bytes: int = 0
    seconds: float = 0.0
    path_regex: re.Pattern[str] | None = None

    def matches(self, request_line: tuple[str, str] | None) -> bool:
        if self.path_regex is None:
            return True
        return request_line is not None and self.path_regex.search(request_line[1]) is not None


@dataclass
class ProxyStats:
    """What the proxy did, for assertions (request and status lines as seen on the wire)."""

    connections: int = 0
    resets: int = 0
    dropped: int = 0
    delayed: int = 0
    requests: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@dataclass
class _Connection:
    """Per-connection state shared by the two directions."""

    reset_budget: int | None = None
    pending_delay: float = 0.0


class FaultProxy:
    """The proxy; use as a context manager or call :meth:`start` / :meth:`stop`.

    :param target: returns ``(host, port)`` of the upstream server, read for every connection.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.stats = ProxyStats()
        self.port = 0
        self._rule = _Rule("pass")
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        """Start listening (bounded wait); returns self."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), loop)
        future.result(timeout=10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Stop listening, cut every open connection and end the thread. Safe to repeat."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- switching behaviour -----------------------------------------------------------------

    def _set(self, rule: _Rule) -> None:
        with self._lock:
            self._rule = rule

    def pass_through(self) -> None:
        """Forward everything untouched."""
        self._set(_Rule("pass"))

    def reset_after(
        self, response_bytes: int, *, times: int | None = 1, path_regex: str | None = None
    ) -> None:
        """Reset connections after ``response_bytes`` bytes of a response went through.

        :param response_bytes: bytes (status line, headers and body) let through first.
        :param times: how many responses to cut (None: all).
        :param path_regex: only cut responses to requests whose path matches; without it the
            count starts with the first byte a new connection sends back.
        """
        pattern = re.compile(path_regex) if path_regex else None
        self._set(_Rule("reset", times, response_bytes=response_bytes, path_regex=pattern))

    def drop_connections(self, *, times: int | None = None) -> None:
        """Accept new connections and reset them before anything is forwarded.

        :param times: how many connections to drop (None: all, until switched).
        """
        self._set(_Rule("drop", times))

    def delay(
        self, seconds: float, *, times: int | None = None, path_regex: str | None = None
    ) -> None:
        """Hold responses back ``seconds`` before forwarding them.

        :param seconds: the delay.
        :param times: how many responses to delay (None: all).
        :param path_regex: only delay responses to requests whose path matches.
        """
        pattern = re.compile(path_regex) if path_regex else None
        self._set(_Rule("delay", times, seconds=seconds, path_regex=pattern))

    def _take(self, kinds: tuple[str, ...], request_line: tuple[str, str] | None) -> _Rule | None:
        """The active rule when it is of ``kinds`` and applies now (consuming one use)."""
        with self._lock:
            rule = self._rule
            if rule.kind not in kinds or not rule.matches(request_line):
                return None
            if rule.times is not None:
                if rule.times <= 0:
                    return None
                rule.times -= 1
            return rule

    # -- forwarding --------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.stats.connections += 1
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            if self._take(("drop",), None) is not None:
                self.stats.dropped += 1
                _reset(writer)
                return
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self.target())
            except OSError:
                _reset(writer)  # the server is down: the client sees a reset
                return
            writer.transport.set_write_buffer_limits(0)  # drain() waits until really sent
            state = _Connection()
            rule = self._take(("reset", "delay"), None)
            if rule is not None and rule.path_regex is None:
                self._arm(state, rule)
            pumps = {
                asyncio.ensure_future(self._client_to_server(reader, upstream_writer, state)),
                asyncio.ensure_future(self._server_to_client(upstream_reader, writer, state)),
            }
            try:
                done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
            if any(not p.cancelled() and p.exception() is not None for p in done):
                _reset(writer)
        except (OSError, asyncio.CancelledError):
            _reset(writer)
        finally:
            if upstream_writer is not None:
                upstream_writer.close()
            if not writer.is_closing():
                writer.close()
            self._tasks.discard(task)

    def _arm(self, state: _Connection, rule: _Rule) -> None:
        if rule.kind == "reset":
            state.reset_budget = rule.response_bytes
        elif rule.kind == "delay":
            state.pending_delay = rule.seconds

    async def _client_to_server(
        self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter, state: _Connection
    ) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                if upstream.can_write_eof():
                    upstream.write_eof()
                return
            match = _REQUEST_LINE.search(data)
            if match is not None:
                line = (match.group(1).decode(), match.group(2).decode("latin-1"))
                self.stats.requests.append(f"{line[0]} {line[1]}")
                rule = self._take(("reset", "delay"), line)
                if rule is not None and rule.path_regex is not None:
                    self._arm(state, rule)
            upstream.write(data)
            await upstream.drain()

    async def _server_to_client(
        self, upstream: asyncio.StreamReader, writer: asyncio.StreamWriter, state: _Connection
    ) -> None:
        while True:
            data = await upstream.read(65536)
            if not data:
                writer.close()
                return
            self.stats.statuses.extend(int(m.group(1)) for m in _STATUS_LINE.finditer(data))
            if state.pending_delay:
                delay, state.pending_delay = state.pending_delay, 0.0
                self.stats.delayed += 1
                await asyncio.sleep(delay)
            budget = state.reset_budget
            if budget is not None and len(data) >= budget:
                writer.write(data[:budget])
                await writer.drain()
                await asyncio.sleep(0.05)  # let the kernel hand the bytes to the client
                self.stats.resets += 1
                _reset(writer)
                raise ConnectionResetError("reset by the fault proxy")
            if budget is not None:
                state.reset_budget = budget - len(data)
            writer.write(data)
            await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with ``RST`` instead of ``FIN`` (``SO_LINGER`` 0), as a crashed peer would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
