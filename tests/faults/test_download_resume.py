"""Connections reset in the middle of a file download (through the fault proxy).

The hook resumes the download from the first byte the consumer has not seen, so collect's
writer, which hashes the chunks as they arrive, still lands complete files whose checksums
match the server's. The reference server streams large files from disk and honours ``Range``
(the resume is a ``206``); small files it sends from memory and ignores ``Range`` (the resume is
a full ``200`` whose already-delivered part the hook skips). Both paths are exercised.

A scripted server (below) plays what the reference server does not: a resume answered with a
range of another version, a file that comes back shorter, ranges that stop before the file's
end, and a file whose every byte had arrived when the connection broke.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.api import MrsDeployConnectionError, MrsDeployProtocolError
from airflow_provider.hooks import MrsDeployHook
from tests.faults.conftest import ConnSetter
from tests.faults.crafted import token_answer
from tests.faults.helpers import (
    ECHO,
    adownload_whole,
    check_manifest,
    collect,
    echo_rows,
    server_file,
)
from tests.faults.proxy import FaultProxy
from tests.hooks.helpers import wait_terminal
from tests.support.loopback import LoopbackHTTPServer, LoopbackServer
from tests.support.server import ReferenceServer

#: echo.txt of each row is 100 KB: a reset after 20 KB is well inside the body.
ROWS = echo_rows(3, text_size=1000, repeat=100)
#: One row whose echo.txt (400 KB) is large enough to be streamed with Range support.
LARGE = echo_rows(1, text_size=1000, repeat=400)
FILE = r"/files/echo\.txt$"


def finished_echo_batch(rows: list[dict[str, Any]] = ROWS) -> str:
    hook = MrsDeployHook()
    try:
        batch_id = hook.start_batch(*ECHO, json.dumps(rows).encode())
        wait_terminal(hook, ECHO, batch_id)
        return batch_id
    finally:
        hook.close()


def test_collect_resumes_files_cut_mid_download(
    proxied_conn: str,
    proxy: FaultProxy,
    reference_server: ReferenceServer,
    task_context: Any,
    tmp_path: Path,
    all_logs: Callable[[], str],
) -> None:
    batch_id = finished_echo_batch()
    proxy.reset_after(20_000, times=2, path_regex=FILE)
    result = collect(
        task_context, batch_id, tmp_path / "out", service=ECHO, max_concurrent_downloads=1
    )
    assert proxy.stats.resets == 2  # two downloads really were cut
    assert result["rows"] == 3 and result["files"] == 3
    manifest = check_manifest(tmp_path / "out")
    for entry in manifest["files"]:
        expected = server_file(reference_server, ECHO, batch_id, entry["index"], "echo.txt")
        assert entry["size"] == len(expected) > 100_000
        assert entry["sha256"] == hashlib.sha256(expected).hexdigest()
    resumes = [line for line in all_logs().splitlines() if "interrupted after" in line]
    assert len(resumes) == 2, resumes
    assert all("echo.txt" in line for line in resumes)


@pytest.mark.parametrize(
    ("rows", "resumed_with"), [(ROWS, 200), (LARGE, 206)], ids=["range-ignored", "range"]
)
def test_repeated_resets_are_resumed(
    rows: list[dict[str, Any]],
    resumed_with: int,
    proxied_conn: str,
    proxy: FaultProxy,
    reference_server: ReferenceServer,
) -> None:
    """Every request for the file is cut after 20 KB, four times: it still arrives whole."""
    batch_id = finished_echo_batch(rows)
    hook = MrsDeployHook()
    proxy.reset_after(20_000, times=4, path_regex=FILE)
    content = b"".join(hook.iter_batch_file(*ECHO, batch_id, 0, "echo.txt", chunk_size=4096))
    hook.close()
    assert proxy.stats.resets == 4
    assert content == server_file(reference_server, ECHO, batch_id, 0, "echo.txt")
    assert proxy.stats.statuses[-5:] == [200] + [resumed_with] * 4


def test_download_gives_up_when_every_attempt_is_cut_without_progress(
    reference_server: ReferenceServer,
    proxy: FaultProxy,
    tmp_path: Path,
    task_context: Any,
    set_default_conn: Callable[..., str],
) -> None:
    """A server that never lets a byte of the body through: a clear error, no manifest."""
    set_default_conn(proxy.port, reference_server.admin_password, max_retries=2)
    batch_id = finished_echo_batch()
    (tmp_path / "out").mkdir()
    previous = {"batch_ids": ["earlier"], "table": {"path": "outputs.parquet"}, "files": []}
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(previous))  # an earlier run's
    proxy.reset_after(0, times=None, path_regex=FILE)
    with pytest.raises(MrsDeployConnectionError) as info:
        collect(task_context, batch_id, tmp_path / "out", service=ECHO)
    assert "echo.txt" in str(info.value)
    assert not (tmp_path / "out" / "manifest.json").exists()  # withdrawn, never rewritten
    assert not list((tmp_path / "out").rglob("*.tmp"))  # no half-written file left behind


# -- Servers that answer a resume with another version, a short range, or a 416 ---------------
#
# A scripted server on loopback writes each answer to a file request as raw bytes (a body cut
# short, a chunked body without its last chunk, a range of another version) and closes the
# connection. Every case runs on the blocking path and on the event loop.

#: The two versions of the file: a splice of them is never the one or the other.
OLD = bytes([1]) * 300_000
NEW = bytes([2]) * 300_000
#: A newer version equal to ``OLD`` up to past where a download cut at 100,000 bytes resumes:
#: only the validators tell the two apart there.
NEWER = OLD[:200_000] + NEW[200_000:]
LAST_MODIFIED = ("Wed, 21 Oct 2026 07:28:00 GMT", "Thu, 22 Oct 2026 07:28:00 GMT")


@dataclass(frozen=True)
class Asked:
    """The resume headers of one file request."""

    range: str | None
    if_range: str | None

    @property
    def start(self) -> int | None:
        """The first byte asked for (None: the whole file)."""
        if self.range is None:
            return None
        return int(self.range.removeprefix("bytes=").split("-")[0])


#: What the server writes for the n-th file request (from 1), as raw bytes.
Answer = Callable[[int, Asked], bytes]


def raw(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """An HTTP/1.1 answer as written on the wire (``body`` already framed)."""
    lines = [f"HTTP/1.1 {status}", *(f"{key}: {value}" for key, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def whole(content: bytes, headers: dict[str, str], *, cut: int | None = None) -> bytes:
    """``200`` with ``Content-Length``, the body cut after ``cut`` bytes if given."""
    framing = {"Content-Length": str(len(content)), **headers}
    return raw("200 OK", framing, content if cut is None else content[:cut])


def chunked(content: bytes, headers: dict[str, str], *, ended: bool = True) -> bytes:
    """``200`` with a chunked body (no length announced); without its last chunk if not
    ``ended``, as when the connection breaks."""
    pieces = [content[at : at + 10_000] for at in range(0, len(content), 10_000)]
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    framing = {"Transfer-Encoding": "chunked", **headers}
    return raw("200 OK", framing, body + (b"0\r\n\r\n" if ended else b""))


def ranged(
    content: bytes, start: int, headers: dict[str, str], *, size: int | None = None
) -> bytes:
    """``206`` of ``content`` from ``start`` (at most ``size`` bytes), or ``416`` past its end."""
    if start >= len(content):
        unsatisfiable = {"Content-Length": "0", "Content-Range": f"bytes */{len(content)}"}
        return raw("416 Range Not Satisfiable", unsatisfiable)
    end = len(content) if size is None else min(len(content), start + size)
    framing = {
        "Content-Length": str(end - start),
        "Content-Range": f"bytes {start}-{end - 1}/{len(content)}",
        **headers,
    }
    return raw("206 Partial Content", framing, content[start:end])


JSON = "application/json"


class _ScriptedHandler(BaseHTTPRequestHandler):
    server: _ScriptedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        token = token_answer()
        length = str(len(token))
        self.wfile.write(raw("200 OK", {"Content-Type": JSON, "Content-Length": length}, token))

    def do_GET(self) -> None:
        asked = Asked(self.headers.get("Range"), self.headers.get("If-Range"))
        self.server.asked.append(asked)
        self.wfile.write(self.server.answer(len(self.server.asked), asked))
        self.wfile.flush()
        self.close_connection = True  # a body cut short ends with the connection


class _ScriptedServer(LoopbackHTTPServer):
    answer: Answer
    asked: list[Asked]


class ScriptedFileServer(LoopbackServer):
    """Answers file requests with ``answer``; ``asked`` records their resume headers."""

    def __init__(self, answer: Answer) -> None:
        server = _ScriptedServer(_ScriptedHandler)
        server.answer, server.asked = answer, []
        self.asked = server.asked
        super().__init__(server)


Downloader = Callable[[Answer], tuple[bytes, list[Asked]]]


@pytest.fixture(params=["blocking", "event-loop"])
def download_from(request: pytest.FixtureRequest, set_default_conn: ConnSetter) -> Downloader:
    """Download the file whole from a server answering ``answer``, through one of the hook's
    two paths; returns the bytes and the resume headers of every file request."""

    def blocking(hook: MrsDeployHook) -> bytes:
        try:
            return b"".join(hook.iter_batch_file("svc", "v1", "batch", 0, "data.bin"))
        finally:
            hook.close()

    on_the_loop = adownload_whole

    def run(answer: Answer) -> tuple[bytes, list[Asked]]:
        with ScriptedFileServer(answer) as server:
            set_default_conn(server.port, "pw", max_retries=3)
            hook = MrsDeployHook()
            if request.param == "blocking":
                return blocking(hook), server.asked
            return asyncio.run(on_the_loop(hook)), server.asked

    return run


@pytest.mark.parametrize(
    "validator",
    [("ETag", '"v1"', '"v2"'), ("Last-Modified", *LAST_MODIFIED)],
    ids=["etag", "last-modified"],
)
def test_range_of_another_version_is_not_spliced(
    validator: tuple[str, str, str], download_from: Downloader
) -> None:
    """The server ignores ``If-Range`` and sends the rest of the new version: a clear error.

    The versions differ only past the byte where the download resumes, so only the validators
    tell them apart."""
    name, first, changed = validator

    def answer(number: int, asked: Asked) -> bytes:
        if number == 1:
            return whole(OLD, {name: first}, cut=100_000)
        assert asked.start is not None and asked.if_range == first
        return ranged(NEWER, asked.start, {name: changed})

    with pytest.raises(MrsDeployProtocolError, match="changed on the server"):
        download_from(answer)


def test_without_a_strong_validator_the_file_is_asked_for_whole(
    download_from: Downloader,
) -> None:
    """A weak ``ETag`` cannot make a range conditional: the file comes whole again (no
    ``Range``) and the part already delivered is skipped."""

    def answer(number: int, asked: Asked) -> bytes:
        if asked.start is not None:  # a range of whatever version the server has now
            return ranged(NEW, asked.start, {"ETag": 'W/"v2"'})
        return whole(OLD, {"ETag": 'W/"v1"'}, cut=100_000 if number == 1 else None)

    content, asked = download_from(answer)
    assert content == OLD
    assert asked == [Asked(None, None), Asked(None, None)]


def test_without_a_strong_validator_a_changed_file_fails(download_from: Downloader) -> None:
    def answer(number: int, asked: Asked) -> bytes:
        if number == 1:
            return whole(OLD, {"ETag": 'W/"v1"'}, cut=100_000)
        if asked.start is not None:
            return ranged(NEW, asked.start, {"ETag": 'W/"v2"'})
        return whole(NEW, {"ETag": 'W/"v2"'})

    with pytest.raises(MrsDeployProtocolError, match="changed on the server"):
        download_from(answer)


def test_restart_whose_repeated_byte_differs_fails(download_from: Downloader) -> None:
    """No validator, no length: only the bytes tell the versions apart, and the last byte
    already delivered is compared (a range is not even asked for)."""

    def answer(number: int, asked: Asked) -> bytes:
        if number == 1:
            return chunked(OLD, {}, ended=False)[:150_000]
        return chunked(NEW, {})  # a server ignoring Range sends its new version whole

    with pytest.raises(MrsDeployProtocolError, match="changed on the server"):
        download_from(answer)


def test_restart_shorter_than_what_was_delivered_fails(download_from: Downloader) -> None:
    """The file came again whole but ended before the bytes already delivered: not a
    success with what had arrived so far."""

    def answer(number: int, asked: Asked) -> bytes:
        if number == 1:
            return chunked(OLD, {}, ended=False)[:150_000]
        return chunked(NEW[:30_000], {})

    with pytest.raises(MrsDeployProtocolError, match="changed on the server"):
        download_from(answer)


def test_ranges_short_of_the_total_are_resumed_until_the_end(download_from: Downloader) -> None:
    """The first answer announced no length; each range names the total, and a range that
    ends before it is not the end of the file: the download carries on from there."""
    content = os.urandom(300_000)

    def answer(number: int, asked: Asked) -> bytes:
        if number == 1:
            return chunked(content, {"ETag": '"v1"'}, ended=False)[:150_000]
        assert asked.start is not None
        return ranged(content, asked.start, {"ETag": '"v1"'}, size=50_000)

    got, asked = download_from(answer)
    assert got == content
    assert len(asked) > 3


def test_range_that_never_reaches_the_total_fails(download_from: Downloader) -> None:
    """A server whose ranges stop at byte 99,999 of 300,000: a third of the file is not a
    success. The short range is resumed like a break, and asked for the rest, the server has
    nothing sensible to send."""
    content = os.urandom(300_000)

    def answer(number: int, asked: Asked) -> bytes:
        if number == 1:
            return chunked(content, {"ETag": '"v1"'}, ended=False)[:80_000]
        assert asked.start is not None
        framing = {
            "Content-Length": str(100_000 - asked.start),
            "Content-Range": f"bytes {asked.start}-99999/300000",
            "ETag": '"v1"',
        }
        return raw("206 Partial Content", framing, content[asked.start : 100_000])

    with pytest.raises(MrsDeployProtocolError, match="impossible range") as info:
        download_from(answer)
    interruption = info.value.__context__
    assert isinstance(interruption, MrsDeployConnectionError)
    assert "partial answer ended at byte 100000 of 300000" in str(interruption)


def test_file_complete_when_the_connection_broke(download_from: Downloader) -> None:
    """Every byte had arrived, only the chunked body's end was lost: the resume asks for the
    last byte again, is answered with it and the total, and the download is complete."""
    content = os.urandom(131_072)  # two whole chunks of 64 KiB: all delivered before the break

    def answer(number: int, asked: Asked) -> bytes:
        if number == 1:
            return chunked(content, {"ETag": '"v1"'}, ended=False)
        assert asked.start is not None
        return ranged(content, asked.start, {"ETag": '"v1"'})

    got, asked = download_from(answer)
    assert got == content
    assert len(asked) == 2


def test_file_shorter_than_what_was_delivered_fails_clearly(download_from: Downloader) -> None:
    """The server ignores ``If-Range`` and the file is now shorter than what arrived: its
    ``416`` reads as a changed file, not as a bad request."""

    def answer(number: int, asked: Asked) -> bytes:
        if number == 1:
            return chunked(OLD, {"ETag": '"v1"'}, ended=False)[:150_000]
        assert asked.start is not None
        return ranged(NEW[:50_000], asked.start, {"ETag": '"v2"'})

    with pytest.raises(MrsDeployProtocolError, match="changed on the server"):
        download_from(answer)


def test_range_without_the_etag_the_first_answer_had_fails(download_from: Downloader) -> None:
    """A server must name a partial answer's ``ETag`` when a full one would (RFC 9110,
    15.3.7); one that leaves it out while ignoring ``If-Range`` could send the rest of another
    version, so the range is refused rather than trusted."""

    def answer(number: int, asked: Asked) -> bytes:
        if number == 1:
            return whole(OLD, {"ETag": '"v1"'}, cut=100_000)
        assert asked.start is not None and asked.if_range == '"v1"'
        return ranged(NEWER, asked.start, {})

    with pytest.raises(MrsDeployProtocolError, match="has no ETag"):
        download_from(answer)


def test_range_without_the_last_modified_is_taken(download_from: Downloader) -> None:
    """``Last-Modified`` is not among what a partial answer must repeat: a range answered to
    ``If-Range`` on the date alone continues the file."""

    def answer(number: int, asked: Asked) -> bytes:
        if number == 1:
            return whole(OLD, {"Last-Modified": LAST_MODIFIED[0]}, cut=100_000)
        assert asked.start is not None and asked.if_range == LAST_MODIFIED[0]
        return ranged(OLD, asked.start, {})

    content, asked = download_from(answer)
    assert content == OLD and len(asked) == 2


def test_range_of_a_file_of_unknown_length_must_name_its_total(
    download_from: Downloader,
) -> None:
    """Neither the first answer (chunked) nor the range (``/*``) names the file's length: the
    end of the range cannot be told from the end of the file, so the download fails instead of
    reporting the part received as the whole file."""

    def answer(number: int, asked: Asked) -> bytes:
        if number == 1:
            return chunked(OLD, {"ETag": '"v1"'}, ended=False)[:150_000]
        assert asked.start is not None
        end = min(len(OLD), asked.start + 50_000)
        framing = {
            "Content-Length": str(end - asked.start),
            "Content-Range": f"bytes {asked.start}-{end - 1}/*",
            "ETag": '"v1"',
        }
        return raw("206 Partial Content", framing, OLD[asked.start : end])

    with pytest.raises(MrsDeployProtocolError, match="names no total"):
        download_from(answer)


def test_restart_without_the_etag_the_first_answer_had_fails(download_from: Downloader) -> None:
    """A server ignoring ``Range`` sends a file of the same length whole, without the
    ``ETag`` it first sent: only one byte would be compared, so it is refused."""

    def answer(number: int, asked: Asked) -> bytes:
        if number == 1:
            return whole(OLD, {"ETag": '"v1"'}, cut=100_000)
        return whole(NEWER, {})

    with pytest.raises(MrsDeployProtocolError, match="changed on the server"):
        download_from(answer)


def test_a_first_answer_holding_part_of_the_file_is_refused(download_from: Downloader) -> None:
    """The first request asks for no range; a ``206`` with part of the file (a proxy or cache
    serving ranges on its own) must not pass for the whole file."""

    def answer(number: int, asked: Asked) -> bytes:
        assert asked.range is None
        return ranged(OLD, 500, {"ETag": '"v1"'}, size=1_000)

    with pytest.raises(MrsDeployProtocolError, match="answered with part of it"):
        download_from(answer)


def test_a_first_answer_of_the_whole_file_as_a_range_is_taken(download_from: Downloader) -> None:
    """A ``206`` whose range is the whole file (``bytes 0-N-1/N``) is the whole file."""

    def answer(number: int, asked: Asked) -> bytes:
        return ranged(OLD, 0, {"ETag": '"v1"'})

    content, asked = download_from(answer)
    assert content == OLD and len(asked) == 1
