"""The row-files fast path answers exactly as the routes do, and only when it should.

Each request is sent twice over real HTTP on loopback: once as is, once with the fast path
switched off (so the routes answer), and the two answers must be the same status, the same
headers in the same order (``Date`` aside) and the same bytes. The server runs in this process
(uvicorn in a thread, the application from :func:`create_app`) with the fast path replaced by a
recording subclass, so each test also checks which layer answered: the fast path for the plain
success cases, the routes for everything else. A last test does the same against the CLI server
in its own process, switching the fast path off with an injected HTTP error that matches nothing.
"""

from __future__ import annotations

import http.client
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Scope

from airflow_provider.server.app import ServerState, create_app
from airflow_provider.server.row_files import (
    FAST_FILE_BYTES,
    RowFilesFastPath,
    parse_path,
    read_small_file,
)
from airflow_provider.server.settings import ServerSettings
from tests.support.api import Api
from tests.support.server import ReferenceServer

ADMIN_PASSWORD = "admin-fast-path"
BOB_PASSWORD = "bob-fast-path"
ECHO = "/api/echoService/v1.0.0/batch"
MT = "/api/mtService/v1.0.0/batch"


@dataclass
class Recorder:
    """Switches the fast path on and off and records the paths it answered."""

    enabled: bool = True
    answered: list[str] = field(default_factory=list)


class RecordingFastPath(RowFilesFastPath):
    """The fast path, observed by a :class:`Recorder`."""

    def __init__(self, app: ASGIApp, state: ServerState, recorder: Recorder) -> None:
        super().__init__(app, state)
        self.recorder = recorder

    def answer(self, scope: Scope) -> Response | None:
        if not self.recorder.enabled:
            return None
        response = super().answer(scope)
        if response is not None:
            self.recorder.answered.append(scope["path"])
        return response


@dataclass(frozen=True)
class Reply:
    """What a client sees of a response (the ``Date`` header aside)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def fetch(port: int, path: str, headers: dict[str, str], method: str = "GET") -> Reply:
    """One request on a fresh connection, headers kept in order."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        kept = [(k.lower(), v) for k, v in response.getheaders() if k.lower() != "date"]
        return Reply(response.status, kept, body)
    finally:
        connection.close()


class LiveServer:
    """The application served by uvicorn in a thread, on a free loopback port.

    :param settings: The server settings.
    """

    def __init__(self, settings: ServerSettings) -> None:
        self.app = create_app(settings)
        self.state: ServerState = self.app.state.server
        self.recorder = Recorder()
        self.app.user_middleware = [
            Middleware(RecordingFastPath, state=self.state, recorder=self.recorder)
            if entry.cls is RowFilesFastPath
            else entry
            for entry in self.app.user_middleware
        ]
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop serving (bounded)."""
        self._server.should_exit = True
        self._thread.join(15)

    def token(self, username: str, password: str) -> str:
        """A fresh access token, already resolved once (so the fast path knows it)."""
        response = requests.post(
            f"{self.url}/login", json={"username": username, "password": password}, timeout=30
        )
        response.raise_for_status()
        token = str(response.json()["access_token"])
        headers = {"Authorization": f"Bearer {token}"}
        assert requests.get(f"{self.url}/services", headers=headers, timeout=30).ok
        return token

    def compare(self, path: str, headers: dict[str, str], fast: bool, method: str = "GET") -> Reply:
        """The reply to a request, asserted identical with the fast path on and off, and
        answered by the fast path exactly when ``fast``."""
        self.recorder.answered.clear()
        first = fetch(self.port, path, headers, method)
        assert bool(self.recorder.answered) is fast, (path, headers, first)
        self.recorder.enabled = False
        try:
            general = fetch(self.port, path, headers, method)
        finally:
            self.recorder.enabled = True
        assert first == general
        return first

    def wait(self, token: str, base: str, batch_id: str) -> dict[str, Any]:
        """Poll a batch until it is finished (which also keeps it in memory)."""
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 60
        while True:
            status = requests.get(f"{self.url}{base}/{batch_id}", headers=headers, timeout=30)
            body = dict(status.json())
            if body["state"] in ("Complete", "Failed"):
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.05)

    def start_batch(self, token: str, base: str, rows: list[dict[str, Any]]) -> str:
        """Submit a batch; its id."""
        response = requests.post(
            f"{self.url}{base}",
            json=rows,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        return str(response.json()["BatchExecutionId"])

    def put_faults(self, token: str, config: dict[str, Any]) -> None:
        """Replace the fault configuration."""
        response = requests.put(
            f"{self.url}/_faults",
            json=config,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text


def live_server(data_dir: Path, **options: Any) -> LiveServer:
    """A :class:`LiveServer` with the demo services, users ``admin`` and ``bob``, fault hooks."""
    settings = ServerSettings(
        data_dir=data_dir,
        admin_password=ADMIN_PASSWORD,
        users={"bob": BOB_PASSWORD},
        port=0,
        enable_fault_hooks=True,
        **options,
    )
    return LiveServer(settings)


@dataclass
class World:
    """A live server with finished batches to read."""

    server: LiveServer
    admin: str
    bob: str
    echo_batch: str
    mt_batch: str

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = live_server(tmp_path_factory.mktemp("fast-path"))
    try:
        admin = server.token("admin", ADMIN_PASSWORD)
        bob = server.token("bob", BOB_PASSWORD)
        rows = [
            {"text": "é", "n": 3},
            {"text": "x" * 999, "n": 100},  # about 100 KB: beyond the fast path's size
            {"text": "fail", "n": 1},  # this row fails and writes no file
        ]
        echo_batch = server.start_batch(admin, ECHO, rows)
        mt_batch = server.start_batch(admin, MT, [{"hp": 120, "wt": 2.8}])
        assert server.wait(admin, ECHO, echo_batch)["state"] == "Complete"
        assert server.wait(admin, MT, mt_batch)["state"] == "Complete"
        yield World(server, admin, bob, echo_batch, mt_batch)
    finally:
        server.stop()


def test_a_small_file_is_answered_by_the_fast_path_as_by_the_route(world: World) -> None:
    reply = world.server.compare(f"{ECHO}/{world.echo_batch}/0/files/echo.txt", world.auth(), True)
    assert reply.status == 200
    assert reply.body == "é é é".encode()
    assert reply.headers == [
        ("server", "uvicorn"),
        ("content-length", str(len(reply.body))),
        ("content-type", "text/plain; charset=utf-8"),
    ]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("answer.csv", "text/csv; charset=utf-8"), ("answer.png", "image/png")],
)
def test_content_types_are_the_routes(world: World, name: str, content_type: str) -> None:
    reply = world.server.compare(f"{MT}/{world.mt_batch}/0/files/{name}", world.auth(), True)
    assert reply.status == 200
    assert dict(reply.headers)["content-type"] == content_type


@pytest.mark.parametrize(("index", "names"), [(0, b'["echo.txt"]'), (2, b"[]")])
def test_listings_are_answered_by_the_fast_path_as_by_the_route(
    world: World, index: int, names: bytes
) -> None:
    reply = world.server.compare(f"{ECHO}/{world.echo_batch}/{index}/files", world.auth(), True)
    assert (reply.status, reply.body) == (200, names)
    assert dict(reply.headers)["content-type"] == "application/json"


def test_query_strings_do_not_matter(world: World) -> None:
    path = f"{ECHO}/{world.echo_batch}/0/files/echo.txt?access_token=x&download=1"
    assert world.server.compare(path, world.auth(), True).status == 200


def test_a_large_file_is_left_to_the_route(world: World) -> None:
    reply = world.server.compare(f"{ECHO}/{world.echo_batch}/1/files/echo.txt", world.auth(), False)
    assert reply.status == 200
    assert len(reply.body) == 999 * 100 + 99 > FAST_FILE_BYTES


@pytest.mark.parametrize("row", [0, 1])
def test_range_requests_are_left_to_the_route(world: World, row: int) -> None:
    path = f"{ECHO}/{world.echo_batch}/{row}/files/echo.txt"
    whole = world.server.compare(path, world.auth(), row == 0)
    for extra in ({"Range": "bytes=2-"}, {"Range": "bytes=2-", "If-Range": "x"}):
        reply = world.server.compare(path, {**world.auth(), **extra}, False)
        assert reply.status in (200, 206)
        assert whole.body.endswith(reply.body)
    listing = world.server.compare(
        f"{ECHO}/{world.echo_batch}/0/files", {**world.auth(), "Range": "bytes=0-"}, False
    )
    assert listing.body == b'["echo.txt"]'


def test_head_and_request_bodies_are_left_to_the_route(world: World) -> None:
    path = f"{ECHO}/{world.echo_batch}/0/files/echo.txt"
    assert world.server.compare(path, world.auth(), False, method="HEAD").status == 405
    declared = {**world.auth(), "Content-Length": "0"}
    assert world.server.compare(path, declared, False).status == 200
    bad = {**world.auth(), "Content-Length": "nope"}
    assert world.server.compare(path, bad, False).status == 400


def test_another_users_batch_is_not_found_alike(world: World) -> None:
    for suffix in ("/0/files/echo.txt", "/0/files"):
        reply = world.server.compare(
            f"{ECHO}/{world.echo_batch}{suffix}", world.auth(world.bob), False
        )
        assert reply.status == 404
        assert b"was not found" in reply.body


@pytest.mark.parametrize(
    ("suffix", "status"),
    [
        ("/0/files/other.txt", 404),
        ("/2/files/echo.txt", 404),  # a failed row: no file
        ("/3/files/echo.txt", 404),
        ("/99/files", 404),
        ("/-1/files", 404),
        ("/007/files/echo.txt", 404),
        ("/+0/files", 200),  # the route reads it as row 0
        ("/x/files", 400),
        ("/0/files/..", 404),
        ("/0/files/%2e%2e", 404),
        ("/0/files/.", 404),
        ("/0/files/a%00b", 400),
        ("/0/files/%00", 400),
        ("/0/files/../0/echo.txt", 404),
        ("/0/files/sub%2Fecho.txt", 404),
        ("/0/files/a%5Cb", 404),
        ("/0/files/", 404),
    ],
)
def test_odd_and_missing_names_and_rows_are_left_to_the_route(
    world: World, suffix: str, status: int
) -> None:
    reply = world.server.compare(f"{ECHO}/{world.echo_batch}{suffix}", world.auth(), False)
    assert reply.status == status, reply


@pytest.mark.parametrize(
    "path",
    [
        "/api/echoService/v9/batch/{id}/0/files/echo.txt",
        "/api/mtService/v1.0.0/batch/{id}/0/files/echo.txt",
        "/api/echoService/v1.0.0/batch/no-such-batch/0/files",
        "/api/echoService/v1.0.0/batches/{id}/0/files",
        "/api/echoService/v1.0.0/batch/{id}/0/file/echo.txt",
    ],
)
def test_other_services_and_paths_are_left_to_the_route(world: World, path: str) -> None:
    reply = world.server.compare(path.format(id=world.echo_batch), world.auth(), False)
    assert reply.status == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer not-a-token", "Basic YWRtaW46eA==", "bearer {admin}x"],
)
def test_bad_tokens_get_the_routes_401(world: World, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    headers = {k: v.format(admin=world.admin) for k, v in headers.items()}
    for suffix in ("/0/files/echo.txt", "/0/files"):
        reply = world.server.compare(f"{ECHO}/{world.echo_batch}{suffix}", headers, False)
        assert reply.status == 401
        assert b"AuthenticationException" in reply.body


def test_token_scheme_and_spacing_as_the_route_takes_them(world: World) -> None:
    headers = {"Authorization": f"bearer   {world.admin}  "}
    reply = world.server.compare(f"{ECHO}/{world.echo_batch}/0/files/echo.txt", headers, True)
    assert reply.status == 200


def test_running_and_failed_batches_are_left_to_the_route(world: World) -> None:
    server, admin = world.server, world.admin
    server.put_faults(admin, {"service": "echoService", "rowDelaySeconds": 60})
    try:
        running = server.start_batch(admin, ECHO, [{"text": "a", "n": 1}])
        for suffix in ("/0/files/echo.txt", "/0/files"):
            reply = server.compare(f"{ECHO}/{running}{suffix}", world.auth(), False)
            assert reply.status in (200, 404)
        requests.delete(f"{server.url}{ECHO}/{running}", headers=world.auth(), timeout=30)
        server.put_faults(admin, {"service": "echoService", "failNextBatches": 1})
        failed = server.start_batch(admin, ECHO, [{"text": "a", "n": 1}])
        assert server.wait(admin, ECHO, failed)["state"] == "Failed"
        for suffix in ("/0/files/echo.txt", "/0/files"):
            server.compare(f"{ECHO}/{failed}{suffix}", world.auth(), False)
    finally:
        server.put_faults(admin, {})


def test_injected_http_errors_step_the_fast_path_aside(world: World) -> None:
    server = world.server
    path = f"{ECHO}/{world.echo_batch}/0/files/echo.txt"
    server.put_faults(world.admin, {"httpErrors": [{"status": 503, "pathRegex": "/files/"}]})
    try:
        server.recorder.answered.clear()
        injected = fetch(server.port, path, world.auth())
        assert injected.status == 503 and not server.recorder.answered
        assert server.compare(path, world.auth(), False).status == 200
    finally:
        server.put_faults(world.admin, {})
    assert server.compare(path, world.auth(), True).status == 200


def test_extra_file_names_are_listed_alike(world: World) -> None:
    server = world.server
    server.put_faults(world.admin, {"extraFileNames": ["ghost.txt"]})
    try:
        reply = server.compare(f"{ECHO}/{world.echo_batch}/0/files", world.auth(), True)
        assert reply.body == b'["echo.txt","ghost.txt"]'
    finally:
        server.put_faults(world.admin, {})


def test_a_cancelled_batch_is_gone_for_the_fast_path_too(world: World) -> None:
    server, admin = world.server, world.admin
    batch_id = server.start_batch(admin, ECHO, [{"text": "b", "n": 2}])
    server.wait(admin, ECHO, batch_id)
    path = f"{ECHO}/{batch_id}/0/files/echo.txt"
    assert server.compare(path, world.auth(), True).status == 200
    assert requests.delete(f"{server.url}{ECHO}/{batch_id}", headers=world.auth(), timeout=30).ok
    assert server.compare(path, world.auth(), False).status == 404


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_every_request_gets_one_access_log_line(world: World) -> None:
    logger = logging.getLogger("airflow_provider.server.access")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        fast = f"{ECHO}/{world.echo_batch}/0/files/echo.txt"
        fetch(world.server.port, fast + "?q=secret", world.auth())
        missing = f"{ECHO}/{world.echo_batch}/0/files/none.txt"
        fetch(world.server.port, missing, world.auth())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert [line.rsplit(" ", 1)[0] for line in handler.lines] == [
        f"GET {fast} 200",
        f"GET {missing} 404",
    ]
    assert all(line.endswith("ms") for line in handler.lines)


def test_expired_tokens_and_index_base_one(tmp_path: Path) -> None:
    server = live_server(tmp_path, access_token_ttl=2.0, file_index_base=1)
    try:
        token = server.token("admin", ADMIN_PASSWORD)
        batch_id = server.start_batch(token, ECHO, [{"text": "y", "n": 2}])
        server.wait(token, ECHO, batch_id)
        headers = {"Authorization": f"Bearer {token}"}
        assert server.compare(f"{ECHO}/{batch_id}/1/files/echo.txt", headers, True).body == b"y y"
        assert server.compare(f"{ECHO}/{batch_id}/1/files", headers, True).status == 200
        assert server.compare(f"{ECHO}/{batch_id}/0/files/echo.txt", headers, False).status == 404
        assert server.compare(f"{ECHO}/{batch_id}/2/files", headers, False).status == 404
        time.sleep(2.2)
        reply = server.compare(f"{ECHO}/{batch_id}/1/files/echo.txt", headers, False)
        assert reply.status == 401
        assert b"invalid or expired" in reply.body
    finally:
        server.stop()


def test_parse_path_takes_only_the_two_routes() -> None:
    batch = "/api/s/v/batch/b"
    assert parse_path(f"{batch}/0/files") == ("s", "v", "b", 0, None)
    assert parse_path(f"{batch}/12/files/a.txt") == ("s", "v", "b", 12, "a.txt")
    for odd in (
        f"{batch}/0/files/",
        f"{batch}/0/files/a/b",
        f"{batch}/0/files/..",
        f"{batch}/0/files/a\0",
        f"{batch}/01/files",
        f"{batch}/\u0661/files",  # a digit, but not an ASCII one
        f"{batch}/0/files/a\\b",
        "/api//v/batch/b/0/files",
        "/api/s/v/batch//0/files",
        f"{batch}/0",
        "/services/s/v",
    ):
        assert parse_path(odd) is None, odd


def test_read_small_file_takes_regular_small_files_only(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.write_bytes(b"abc")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (FAST_FILE_BYTES + 1))
    link = tmp_path / "link"
    link.symlink_to(small)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert read_small_file(str(small)) == b"abc"
    assert read_small_file(str(link)) == b"abc"  # the route follows links too
    for declined in (big, fifo, tmp_path, tmp_path / "missing"):
        assert read_small_file(str(declined)) is None


def test_row_folders_are_the_executors(world: World) -> None:
    fast_path = RowFilesFastPath(world.server.app, world.server.state)
    executor = world.server.state.executor
    assert fast_path.row_dir("b", 3) == str(executor.row_dir("b", 3))


def test_the_cli_server_answers_the_same_with_and_without_the_fast_path(
    reference_server: ReferenceServer,
) -> None:
    api = Api(reference_server)
    batch_id = api.start_batch([{"hp": 100, "wt": 3.1}])
    api.wait(batch_id)
    headers = {"Authorization": str(api.session.headers["Authorization"])}
    paths = [
        f"{MT}/{batch_id}/0/files/answer.csv",
        f"{MT}/{batch_id}/0/files/answer.png",
        f"{MT}/{batch_id}/0/files",
        f"{MT}/{batch_id}/1/files",
        f"{MT}/{batch_id}/0/files/none.txt",
    ]
    replies = [fetch(reference_server.port, path, headers) for path in paths]
    never = {"status": 503, "pathRegex": "^/never$"}
    with reference_server.faults(httpErrors=[never]):
        general = [fetch(reference_server.port, path, headers) for path in paths]
    assert replies == general
    assert [r.status for r in replies] == [200, 200, 200, 404, 404]
