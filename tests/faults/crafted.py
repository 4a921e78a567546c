"""A stand-in server that answers with crafted values: tokens a header cannot carry, batch ids
that are no path segment, results whose files are not base64.

Each answer is a raw body the test sets (so JSON escapes such as ``\\ud800`` arrive exactly as
written), and every request is recorded, so a test can check what was, and was not, sent. It
binds 127.0.0.1 on a free port and is stopped by the test.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.support.loopback import LoopbackHTTPServer, LoopbackServer

MT = ("mtService", "v1.0.0")


def token_answer(
    access_token: str = "crafted-access", refresh_token: str = "crafted-refresh"
) -> bytes:
    """A login answer; the tokens are written into the JSON text as given (escapes included)."""
    expires = int(time.time()) + 3600
    text = (
        f'{{"token_type": "Bearer", "access_token": "{access_token}", '
        f'"refresh_token": "{refresh_token}", "expires_in": 3600, "expires_on": {expires}}}'
    )
    return text.encode("utf-8", "surrogatepass")


def status_answer(
    output_files: dict[str, str],
    *,
    documented: bool = True,
    output_parameters: dict[str, object] | None = None,
    changed_files: list[str] | None = None,
) -> bytes:
    """A complete one-row batch status whose row carries ``output_files`` inline.

    :param documented: spelled exactly as the API documents it (the parser's fast path), or
        with other key casing (the generic path).
    :param output_parameters: the row's outputs (default ``{"answer": 0.5}``); JSON escapes
        what UTF-8 cannot encode, such as a lone surrogate.
    :param changed_files: the row's ``changedFiles`` (default none).
    """
    row = {
        "success": True,
        "errorMessage": "",
        "consoleOutput": "",
        "changedFiles": changed_files or [],
        "outputParameters": {"answer": 0.5} if output_parameters is None else output_parameters,
        "outputFiles": output_files,
    }
    status = {
        "state": "Complete",
        "completedItemCount": 1,
        "totalItemCount": 1,
        "batchExecutionResults": [row],
    }
    if not documented:
        status = {key.upper(): value for key, value in status.items()}
    return json.dumps(status).encode()


SERVICE = json.dumps(
    [
        {
            "name": MT[0],
            "version": MT[1],
            "runtimeType": "R",
            "inputParameterDefinitions": [{"name": "hp", "type": "numeric"}],
            "outputParameterDefinitions": [{"name": "answer", "type": "numeric"}],
            "outputFileNames": ["plot.png"],
        }
    ]
).encode()


@dataclass
class Answers:
    """What the server answers; tests change it between calls.

    :param login: body of ``POST /login`` and ``POST /login/refreshToken``.
    :param start: body of a batch start (``POST .../batch``, 202).
    :param batches: body of the batch list (``GET .../batch``).
    :param status: body of any other ``GET`` under ``/api/`` (a batch status).
    :param service: body of ``GET /services/...`` (the service's description).
    :param requests: ``(method, path)`` of every request received, in order.
    """

    login: bytes = field(default_factory=token_answer)
    start: bytes = b'{"batchExecutionId": "b1"}'
    batches: bytes = b'["b1"]'
    status: bytes = field(default_factory=lambda: status_answer({}))
    service: bytes = SERVICE
    requests: list[tuple[str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _received(self) -> Answers:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
        answers = self.server.answers
        answers.requests.append((self.command, self.path.split("?")[0]))
        return answers

    def do_POST(self) -> None:
        answers = self._received()
        if self.path.startswith("/login"):
            self._answer(200, answers.login)
        else:
            self._answer(202, answers.start)

    def do_GET(self) -> None:
        answers = self._received()
        path = self.path.split("?")[0]
        if path.startswith("/services"):
            self._answer(200, answers.service)
        elif path.endswith("/batch"):
            self._answer(200, answers.batches)
        else:
            self._answer(200, answers.status)

    def do_DELETE(self) -> None:
        self._received()
        self._answer(200, b"")


class _Server(LoopbackHTTPServer):
    answers: Answers


class CraftedServer(LoopbackServer):
    """The stand-in server on ``127.0.0.1:port``; use as a context manager."""

    def __init__(self) -> None:
        server = _Server(_Handler)
        server.answers = Answers()
        self._crafted = server
        super().__init__(server)

    @property
    def answers(self) -> Answers:
        """What it answers, and what it received."""
        return self._crafted.answers
