"""Row files of a batch: listing, media types, and a fast path for finished batches.

A collect lists every row's folder and downloads every file, one request each: thousands of
requests for a few KiB apiece. Through FastAPI, each one costs routing, dependency injection,
the middleware layers and a hop to a worker thread and back, which is far more than reading a
small file from the page cache. :class:`RowFilesFastPath` sits in front of the application and
answers only the plain success case of the two routes:

- ``GET /api/{name}/{version}/batch/{batch_id}/{index}/files``
- ``GET /api/{name}/{version}/batch/{batch_id}/{index}/files/{file_name}``

for a token already resolved in memory, a ``Complete`` batch of that user and service already
in memory, a row of that batch and, for a file, a plain name of a small regular file. It builds
the very responses the routes build. Anything else (unknown or expired token, another user's,
unknown or unfinished batch, row out of range, odd or missing file name, large file, ``HEAD``,
``Range``, a request body, injected HTTP errors) goes on to the application untouched, so
errors, their bodies and every other behaviour stay the routes' own.
"""

from __future__ import annotations

import mimetypes
import os
import stat
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from airflow_provider.server.invocation import is_plain_file_name
from airflow_provider.server.middleware import log_access
from airflow_provider.server.responses import JSONResponse

if TYPE_CHECKING:
    from airflow_provider.server.state import ServerState

#: Files up to this size are read on the event loop by the fast path (a few microseconds from
#: the page cache); larger ones go to the route, which reads them in a worker thread.
FAST_FILE_BYTES = 64 * 1024
#: Request headers the fast path leaves to the application: ranges (resumed downloads), and a
#: declared body (the body-limit middleware rules on those).
_DECLINED_HEADERS = frozenset((b"range", b"if-range", b"content-length", b"transfer-encoding"))
#: Longest row index taken by the fast path (longer ones are out of range anyway).
_MAX_INDEX_DIGITS = 12
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def file_names(row_dir: Path | str) -> list[str]:
    """Names of the regular files in a row's folder, sorted (none when it has no folder)."""
    try:
        with os.scandir(row_dir) as entries:
            return sorted(entry.name for entry in entries if entry.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return []


@lru_cache(maxsize=1024)
def media_type(file_name: str) -> str:
    """The ``Content-Type`` of a row file, guessed from its name.

    Cached: the guess depends on the name only, and a collect asks for the same few names
    thousands of times.
    """
    return mimetypes.guess_type(file_name)[0] or "application/octet-stream"


class FileRequest(NamedTuple):
    """The parts of a row-files path; ``file_name`` is ``None`` for the listing."""

    name: str
    version: str
    batch_id: str
    row: int
    file_name: str | None


def parse_path(path: str) -> FileRequest | None:
    """The row-files request a path names, or ``None`` for any other path.

    Segments are split as the routes' patterns split them (``[^/]+`` each, the file name being
    the rest); the index is taken only in its plain decimal form, any other spelling is left
    to the route's own parsing.
    """
    if not path.startswith("/api/"):
        return None
    parts = path.split("/", 8)
    if len(parts) < 8 or parts[4] != "batch" or parts[7] != "files":
        return None
    _, _, name, version, _, batch_id, index, _, *rest = parts
    if not (name and version and batch_id) or not _is_plain_index(index):
        return None
    file_name = rest[0] if rest else None
    if file_name is not None and not is_plain_file_name(file_name):
        return None
    return FileRequest(name, version, batch_id, int(index), file_name)


def _is_plain_index(text: str) -> bool:
    """ASCII digits without a leading zero (``0`` itself aside), of a sensible length."""
    return (
        0 < len(text) <= _MAX_INDEX_DIGITS
        and text.isascii()
        and text.isdigit()
        and (text == "0" or text[0] != "0")
    )


def authorization_of(scope: Scope) -> str | None:
    """The request's first ``Authorization`` header, or ``None`` when it has none or when it
    carries a header the fast path leaves to the application."""
    found: str | None = None
    for key, value in scope["headers"]:
        if key == b"authorization":
            if found is None:
                found = value.decode("latin-1")
        elif key in _DECLINED_HEADERS:
            return None
    return found


def read_small_file(path: str) -> bytes | None:
    """The content of a regular file of at most :data:`FAST_FILE_BYTES`, else ``None``.

    Opened without blocking (a FIFO in a row folder must not stall the event loop) and checked
    on the open descriptor; a file that changes size while being read is left to the route.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > FAST_FILE_BYTES:
            return None
        data = os.read(fd, info.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) == info.st_size else None


class RowFilesFastPath:
    """Pure ASGI layer answering the plain success case of the row-files routes (see module).

    It writes its own access log line, as the access-log middleware behind it never sees the
    requests it answers.

    :param app: The application (its middleware stack).
    :param state: The server's parts.
    """

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state
        self._files_dir = os.fspath(state.settings.files_dir)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            started = time.perf_counter()
            response = self.answer(scope)
            if response is not None:
                status = 0
                try:
                    await response(scope, receive, send)
                    status = response.status_code
                finally:
                    log_access(scope, status, started)
                return
        await self.app(scope, receive, send)

    def answer(self, scope: Scope) -> Response | None:
        """The response the route would give, when this is a case the fast path takes."""
        if scope.get("root_path"):
            return None
        request = parse_path(scope["path"])
        if request is None:
            return None
        state = self.state
        if state.fault_points.http_errors_configured():
            return None
        user = state.auth.cached_user(authorization_of(scope))
        if user is None:
            return None
        row_dir = self._row_dir(request, user)
        if row_dir is None:
            return None
        if request.file_name is None:
            names = file_names(row_dir)
            names += state.fault_points.extra_file_names(request.name)
            return JSONResponse(names)
        content = read_small_file(os.path.join(row_dir, request.file_name))
        if content is None:
            return None
        return Response(content=content, media_type=media_type(request.file_name))

    def _row_dir(self, request: FileRequest, user: str) -> str | None:
        """The row's folder, if the batch is a ``Complete`` one of ``user`` and of this service
        in memory and has that row (every row of a ``Complete`` batch is done)."""
        state = self.state
        batch = state.store.finished_batch(request.batch_id)
        if (
            batch is None
            or batch.state != "Complete"
            or batch.owner != user
            or batch.service_name != request.name
            or batch.service_version != request.version
        ):
            return None
        idx = request.row - state.settings.file_index_base
        if idx < 0 or idx >= batch.total:
            return None
        return self.row_dir(batch.id, idx)

    def row_dir(self, batch_id: str, idx: int) -> str:
        """:meth:`Executor.row_dir` as a string, without the cost of building a ``Path``."""
        return os.path.join(self._files_dir, batch_id, str(idx))
