"""A ``Content-Range`` whose numbers are thousands of digits long fails like any other range
that does not fit, on the blocking and the async download path.

Python's ``int()`` refuses a decimal string of more than 4300 digits with a bare
``ValueError``; the provider's range parser used to convert whatever digits the header held,
so such a header (a broken or hostile server, or something in between) escaped as that
``ValueError`` instead of the provider's ``MrsDeployProtocolError``, both on a first answer and
on the answer to a resume. The stand-in server here writes its answers byte for byte.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from airflow_provider.api.errors import MrsDeployProtocolError
from airflow_provider.hooks import MrsDeployHook
from tests.faults.conftest import connection_json
from tests.faults.raw_server import RawServer, Received, Route, raw_answer

PATHS = ("sync", "async")
FILE = ("svc", "v1", "b1", 0, "f.txt")
CONTENT = b"abcdefghij"
#: 5000 digits: past the 4300 ``int()`` converts.
HUGE = "9" * 5000


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Route], RawServer]]:
    """``serve(route)``: a started raw server, as the connection of :func:`download`."""
    started: list[RawServer] = []

    def start(route: Route) -> RawServer:
        server = RawServer(route)
        server.__enter__()
        started.append(server)
        monkeypatch.setenv(
            "AIRFLOW_CONN_MRSDEPLOY_HUGE_RANGE",
            connection_json(
                server.port,
                "pw-123456",
                max_retries=2,
                retry_min_wait=0.01,
                retry_max_wait=0.02,
                timeout=5,
            ),
        )
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


def download(path: str) -> bytes:
    """The file, read whole on ``path`` (``"sync"`` or ``"async"``) by a new hook."""
    hook = MrsDeployHook("mrsdeploy_huge_range")
    if path == "sync":
        try:
            return b"".join(hook.iter_batch_file(*FILE))
        finally:
            hook.close()

    async def read() -> bytes:
        try:
            return b"".join([chunk async for chunk in hook.aiter_batch_file(*FILE)])
        finally:
            await hook.aclose()

    return asyncio.run(read())


def _resuming(range_answer: Callable[[int], bytes]) -> Route:
    """A file whose first answer (200, ``ETag``, length 10) breaks after 5 of its bytes; a
    resume (``Range: bytes=N-``) is answered with ``range_answer(N)``. (The hook may not have
    delivered the 5 bytes before the break: it then resumes from 0.)"""

    def route(request: Received) -> tuple[bytes, bool]:
        headers = request.headers
        asked = headers.get("range")
        if asked is None:
            return raw_answer(200, CONTENT[:5], "Content-Length: 10", 'ETag: "e1"'), True
        assert asked.startswith("bytes=") and asked.endswith("-"), asked
        assert headers.get("if-range") == '"e1"'
        return range_answer(int(asked[len("bytes=") : -1])), False

    return route


@pytest.mark.parametrize("path", PATHS)
def test_a_first_answer_with_a_huge_range_is_a_protocol_error(
    path: str, serve: Callable[[Route], RawServer]
) -> None:
    server = serve(
        lambda _: (
            raw_answer(206, b"abc", f"Content-Range: bytes 0-{HUGE}/10", 'ETag: "e1"'),
            False,
        )
    )
    with pytest.raises(MrsDeployProtocolError, match="answered with part of it") as caught:
        download(path)
    # The message quotes the start of the header, not its 5000 digits.
    assert len(str(caught.value)) < 600
    assert len(server.received) == 1  # refused, not retried


@pytest.mark.parametrize("digits", [5000, 20])
@pytest.mark.parametrize("path", PATHS)
def test_a_resume_answered_with_a_huge_range_is_a_protocol_error(
    path: str, digits: int, serve: Callable[[Route], RawServer]
) -> None:
    """20 digits is already more than any real file's size: refused like 5000."""
    number = "9" * digits
    server = serve(
        _resuming(
            lambda start: raw_answer(
                206, CONTENT[start:], f"Content-Range: bytes {start}-{number}/10", 'ETag: "e1"'
            )
        )
    )
    with pytest.raises(MrsDeployProtocolError, match=r"asked to resume at byte \d+, ") as caught:
        download(path)
    assert len(str(caught.value)) < 600
    ranges = [request.headers.get("range") for request in server.received]
    assert len(ranges) == 2 and ranges[0] is None and ranges[1] is not None  # not retried


@pytest.mark.parametrize("path", PATHS)
def test_a_resume_answered_with_an_ordinary_range_still_completes(
    path: str, serve: Callable[[Route], RawServer]
) -> None:
    """The bound on the digits leaves real ranges alone (upper-case unit included)."""
    server = serve(
        _resuming(
            lambda start: raw_answer(
                206, CONTENT[start:], f"Content-Range: BYTES {start}-9/10", 'ETag: "e1"'
            )
        )
    )
    assert download(path) == CONTENT
    assert len(server.received) == 2
