"""The benchmarks' latency proxy, over real TCP on loopback: delay, order, concurrency, close."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import socketserver
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DELAY_MS = 20.0  # large next to scheduling noise, small enough to keep the tests fast
DELAY = DELAY_MS / 1000


class _Echo(socketserver.BaseRequestHandler):
    """Sends back what it receives; half-closes once the client has."""

    def handle(self) -> None:
        while True:
            data = self.request.recv(1 << 16)
            if not data:
                break
            self.request.sendall(data)
        self.request.shutdown(socket.SHUT_WR)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _Proxy:
    def __init__(self, target_port: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "benchmarks.latency_proxy", "--listen-port", "0"),
                *("--target-port", str(target_port), "--delay-ms", str(DELAY_MS)),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match is None:
            self.stop()
            raise AssertionError(f"the proxy did not start: {line!r}")
        self.port = int(match.group(1))

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then the exit code and what it printed on stderr."""
        self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
        return self.process.returncode, err


@pytest.fixture(scope="module")
def proxy(echo_port: int) -> Iterator[_Proxy]:
    running = _Proxy(echo_port)
    try:
        yield running
    finally:
        running.stop()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _receive(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = sock.recv(min(size, 1 << 16))
        assert chunk, "connection closed early"
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def test_each_exchange_costs_one_round_trip(proxy: _Proxy) -> None:
    with _connect(proxy.port) as sock:
        times = []
        for number in range(6):
            message = f"ping {number}".encode()
            started = time.perf_counter()
            sock.sendall(message)
            assert _receive(sock, len(message)) == message
            times.append(time.perf_counter() - started)
    # The first exchange teaches the proxy how late its wake-ups run; later ones may come
    # slightly early (never by more than a quarter of the delay) or late on a busy machine.
    assert min(times) >= 0.75 * DELAY
    assert DELAY * 0.9 <= statistics.median(times) < DELAY + 0.015


def test_a_large_stream_keeps_its_order_and_is_not_slowed(proxy: _Proxy) -> None:
    payload = os.urandom(1 << 16) * 48  # 3 MiB: more than the proxy holds before pausing
    with _connect(proxy.port) as sock:
        started = time.perf_counter()
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        echoed = _receive(sock, len(payload))
        sender.join(10)
        elapsed = time.perf_counter() - started
    assert echoed == payload
    assert elapsed < 0.7  # a few round trips, not one per chunk


def test_connections_wait_side_by_side(proxy: _Proxy) -> None:
    async def exchange(number: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        message = f"connection {number}\n".encode()
        received = b""
        for _ in range(3):  # keep-alive: several exchanges on one connection
            writer.write(message)
            received = await reader.readexactly(len(message))
        writer.close()
        await writer.wait_closed()
        return received

    async def together() -> list[bytes]:
        return await asyncio.gather(*(exchange(number) for number in range(40)))

    started = time.perf_counter()
    received = asyncio.run(together())
    elapsed = time.perf_counter() - started
    assert received == [f"connection {number}\n".encode() for number in range(40)]
    assert elapsed < 3 * DELAY + 0.25  # 120 one at a time would take 2.4 s


def test_half_close_and_close_pass_through_after_the_data(proxy: _Proxy) -> None:
    with _connect(proxy.port) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(1024):
            received += chunk
    assert received == b"last words"


def test_stops_on_sigterm_and_reports_its_traffic(echo_port: int) -> None:
    running = _Proxy(echo_port)
    try:
        with _connect(running.port) as sock:
            sock.sendall(b"hello")
            assert _receive(sock, 5) == b"hello"
    finally:
        code, err = running.stop()
    assert code == 0
    assert "1 connections, 5 bytes up, 5 bytes down" in err
