"""Where the provider's CPU per file goes beyond a bare client's, measured without a server.

``bench_cpu`` compares whole clients; this splits the difference into two parts that need no
network, so they hardly move between runs:

- **the hook's own layers**: the authentication flow, the retry policy and the resumable
  download above the transport, measured with a transport that answers from memory (the same
  hook code a collect runs, with no socket under it): one call of ``MrsDeployHook._acall``, and
  one file through ``aiter_batch_file``;
- **Collect's two promises about a file** on the destination's disk: writing it under a
  temporary name created exclusively and renaming it into place (it appears whole or not at
  all), and its SHA-256 for the manifest, against one plain open and write; and the same plain
  write without a file object (``os.open``, ``os.write``), as Collect writes its row files.

Each figure is the lowest of :data:`ROUNDS` rounds of :data:`CALLS` calls (:data:`LANDED_FILES`
files), in µs per call or file.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

SERVICE, VERSION = "fileService", "v1"
ROUNDS = 5
CALLS = 20_000
LANDED_FILES = 5_000  # per round and way (files cost more than calls)
FILE = b"x" * 10_240  # the size of bench_cpu's files
FILE_HEADERS = CIMultiDictProxy(
    CIMultiDict(
        {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(FILE)),
            "ETag": '"0123456789"',
            "Last-Modified": "Mon, 30 Nov 2026 10:00:00 GMT",
        }
    )
)


class _OneChunk:
    """A body that has arrived whole: one chunk, then the end."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done = False

    def __aiter__(self) -> _OneChunk:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        self._done = True
        return FILE

    async def aclose(self) -> None:
        self._done = True


def _memory_transport() -> Any:
    """A transport answering a login with a token and any other request with the file."""
    from airflow_provider.api.exchange import Outgoing, RawResponse
    from airflow_provider.hooks.mock_transport import MockStream, MockTransport
    from airflow_provider.hooks.settings import MrsDeployConnectionSettings

    expires = int(time.time()) + 3600
    login = (
        b'{"access_token": "a.b.c", "refresh_token": "refresh-0123456789", "token_type": "Bearer", '
        b'"expires_on": "%d"}' % expires
    )

    class MemoryTransport(MockTransport):
        def __init__(self) -> None:
            super().__init__(lambda request: (500, None))

        async def asend(
            self, settings: MrsDeployConnectionSettings, outgoing: Outgoing
        ) -> RawResponse:
            if outgoing.request.path == "/login":
                return RawResponse(200, {"Content-Type": "application/json"}, login)
            return RawResponse(200, FILE_HEADERS, b"", stream=MockStream(FILE))

        def aiter_stream(
            self,
            raw: RawResponse,
            chunk_size: int,
            method: str,
            path: str,
            *,
            stall_timeout: float,
        ) -> AsyncIterator[bytes]:
            return _OneChunk()

    return MemoryTransport()


async def _hook_layers() -> tuple[float, float]:
    """µs per call: ``_acall`` of a file request (its body read), one file downloaded."""
    from airflow_provider.api import calls
    from airflow_provider.hooks import MrsDeployHook

    hook = MrsDeployHook(transport=_memory_transport())
    await hook._acall(calls.get_batch_file(SERVICE, VERSION, "b", 0, "f"))  # logs in

    async def call_only() -> None:
        for index in range(CALLS):
            await hook._acall(calls.get_batch_file(SERVICE, VERSION, "b", index, "f"))
            async for _ in _OneChunk():
                pass

    async def download() -> None:
        for index in range(CALLS):
            async for _ in hook.aiter_batch_file(SERVICE, VERSION, "b", index, "f"):
                pass

    best = {call_only: float("inf"), download: float("inf")}
    for _ in range(ROUNDS):
        for way in best:
            started = time.process_time()
            await way()
            best[way] = min(best[way], (time.process_time() - started) / CALLS * 1e6)
    await hook.aclose()
    return best[call_only], best[download]


def _land(folder: Path, index: int, *, renamed: bool, hashed: bool) -> None:
    """Write one file: straight under its name, or under a temporary name created exclusively
    and then renamed; with its SHA-256 or not. Plain string paths, so that the figures are the
    system calls and the hash, not path objects."""
    final = f"{folder}/{index}"
    target = f"{folder}/.{index}.tmp" if renamed else final
    digest = hashlib.sha256() if hashed else None
    with open(target, "xb" if renamed else "wb") as handle:
        if digest is not None:
            digest.update(FILE)
        handle.write(FILE)
    if renamed:
        os.replace(target, final)
    if digest is not None:
        digest.hexdigest()


def _land_with_system_calls(folder: Path, index: int) -> None:
    """Write one file straight under its name with ``os.open``, ``os.write`` and ``os.close``:
    no file object (Collect writes its row files so)."""
    descriptor = os.open(f"{folder}/{index}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        os.write(descriptor, FILE)
    finally:
        os.close(descriptor)


def _landing(workdir: Path) -> dict[str, float]:
    """µs per 10 KB file on ``workdir``'s disk, each way (a new folder per round)."""
    ways: dict[str, Callable[[Path, int], None]] = {
        "system_calls": _land_with_system_calls,
        "plain": functools.partial(_land, renamed=False, hashed=False),
        "renamed": functools.partial(_land, renamed=True, hashed=False),
        "renamed_hashed": functools.partial(_land, renamed=True, hashed=True),
    }
    folder = workdir / "landing-parts"
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(ROUNDS):
        for name, land in ways.items():
            folder.mkdir()
            started = time.process_time()
            for index in range(LANDED_FILES):
                land(folder, index)
            best[name] = min(best[name], (time.process_time() - started) / LANDED_FILES * 1e6)
            shutil.rmtree(folder)
    return best


def lines(workdir: Path) -> list[str]:
    """The figures, as lines to print."""
    call_only, download = asyncio.run(_hook_layers())
    landing = _landing(workdir)
    plain, renamed, hashed = landing["plain"], landing["renamed"], landing["renamed_hashed"]
    return [
        "where the provider's CPU per file goes beyond the bare client's, measured without a "
        f"server (lowest of {ROUNDS} rounds):",
        f"  the hook's own layers over a transport answering from memory: {download:.1f} µs a "
        f"file downloaded (aiter_batch_file), of which {call_only:.1f} µs the call "
        f"(request built, authentication flow, retry policy) and {download - call_only:.1f} µs "
        "the resumable download",
        f"  landing a 10 KB file on this disk: {plain:.1f} µs plain (open, write), "
        f"{renamed:.1f} µs under a temporary name then renamed (+{renamed - plain:.1f}), "
        f"{hashed:.1f} µs with its SHA-256 too (+{hashed - plain:.1f}: Collect's two promises); "
        f"{landing['system_calls']:.1f} µs plain without a file object (os.open, os.write, "
        "os.close: how Collect writes, the bare clients use open)",
    ]
