"""The batch status page cannot stall Airflow's API server, however slow the scoring server.

Airflow's own API server app (``tests/ui/conftest.py``) served by uvicorn on a loopback port,
as ``airflow api-server`` serves it: one event loop, and one thread pool shared by every sync
route of Airflow. The scoring server is a real loopback server whose login never answers.
Before the page had its own bounded threads and a short budget, each page load held a thread
of Airflow's shared pool for the connection's whole retry policy (minutes), and 45 of them
left Airflow's own API unanswered.

Bounds are generous on purpose: they tell "bounded" (seconds) from "stalled" (minutes).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from airflow_provider.ui.page import CONCURRENT_FETCHES, RETRY_AFTER_SECONDS
from tests.faults.conftest import connection_json
from tests.faults.crafted import CraftedServer
from tests.faults.hostile import HostileServer, Misbehaviour, Script
from tests.hooks.helpers import MT
from tests.ui.conftest import ApiServer
from tests.ui.test_api_server import page

#: A page of a server that never answers must end within this (the budget is 10 s).
ANSWERED_WITHIN = 20.0
#: Page loads at once: more than Starlette's shared pool has threads (40).
PAGE_LOADS = 45


@dataclass
class Answer:
    """What one request got, and how long it took."""

    status: int | None
    seconds: float
    retry_after: str | None = None
    text: str = ""


class LiveApiServer:
    """Airflow's API server app served by uvicorn in a thread, on a free loopback port.

    :param app: the app (Airflow's, with the provider's plugin mounted).
    :param token: a signed-in admin's token, sent as a bearer token.
    """

    def __init__(self, app: Any, token: str) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._headers = {"Authorization": f"Bearer {token}"}
        self.url = ""

    def start(self) -> None:
        """Serve, and wait until it listens."""
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "did not start"
            time.sleep(0.02)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Stop serving (bounded)."""
        self._server.should_exit = True
        self._thread.join(15)

    def get(self, path: str, timeout: float = 60.0) -> Answer:
        """``GET path`` as the admin; a request that got no answer has status None."""
        started = time.monotonic()
        try:
            response = httpx.get(self.url + path, headers=self._headers, timeout=timeout)
        except httpx.HTTPError:
            return Answer(None, time.monotonic() - started)
        return Answer(
            response.status_code,
            time.monotonic() - started,
            response.headers.get("retry-after"),
            response.text,
        )


@pytest.fixture(scope="module")
def live(api_server: ApiServer) -> Iterator[LiveApiServer]:
    """The API server app of ``api_server``, served over a real socket."""
    server = LiveApiServer(api_server.client.app, api_server.tokens["admin"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def silent(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    """Connection ``mrs_silent``: a server that takes every login and never answers it.

    The connection keeps the default ``timeout`` (60 s) and ``max_retries`` (5): the policy a
    task gets, which the page must not inherit.
    """
    script = Script(routes={"login": Misbehaviour(hang=True)})
    with HostileServer(script) as server:
        monkeypatch.setenv("AIRFLOW_CONN_MRS_SILENT", connection_json(server.port, "pw-silent"))
        yield server


def test_a_page_of_a_server_that_never_answers_ends_within_its_budget(
    live: LiveApiServer, silent: HostileServer
) -> None:
    answer = live.get(page("mrs_silent", *MT, "b1"))
    assert answer.status == 502, answer
    assert answer.seconds < ANSWERED_WITHIN
    assert "Cannot read the batch" in answer.text
    # No retry: one login was sent.
    assert silent.script.count("login") == 1


def test_page_loads_beyond_the_bound_are_refused_and_airflow_keeps_answering(
    live: LiveApiServer, silent: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = page("mrs_silent", *MT, "b1")
    with ThreadPoolExecutor(PAGE_LOADS) as pool:
        loads = [pool.submit(live.get, path) for _ in range(PAGE_LOADS)]
        time.sleep(2)  # every load has reached the page by now
        airflow = [live.get(route, timeout=15) for route in ("/api/v2/version", "/api/v2/dags")]
        answers = [load.result() for load in loads]

    assert [route.status for route in airflow] == [200, 200], airflow
    busy = [answer for answer in answers if answer.status == 503]
    fetched = [answer for answer in answers if answer.status != 503]
    # At most the bound ran (a load arriving after a fetch ended may take its slot).
    assert len(fetched) <= 2 * CONCURRENT_FETCHES, [answer.status for answer in answers]
    assert len(busy) >= PAGE_LOADS - 2 * CONCURRENT_FETCHES
    assert all(answer.status in (502, 504) for answer in fetched), fetched
    assert all(answer.seconds < ANSWERED_WITHIN for answer in answers)
    for answer in busy:
        assert answer.retry_after == str(RETRY_AFTER_SECONDS)
        assert "Too many batch pages at once" in answer.text
    # No retry, and no login beyond the fetches that ran.
    assert 1 <= silent.script.count("login") <= len(fetched)

    # Every slot is free again: the next page of a server that answers is shown.
    with CraftedServer() as crafted:
        monkeypatch.setenv("AIRFLOW_CONN_MRS_AFTER", connection_json(crafted.port, "pw"))
        after = live.get(page("mrs_after", *MT, "b1"))
    assert after.status == 200, after


def test_a_busy_page_answers_at_once(
    live: LiveApiServer, silent: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every slot taken, a page is refused without waiting for any of them.

    Each load uses a connection of its own credentials, so that each logs in at once (loads
    sharing credentials share one login, made by one at a time): once the server has seen
    as many logins as there are slots, every slot is taken.
    """
    paths = []
    for number in range(CONCURRENT_FETCHES):
        conn_id = f"mrs_silent_{number}"
        body = connection_json(silent.port, f"pw-silent-{number}")
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", body)
        paths.append(page(conn_id, *MT, "b1"))
    with ThreadPoolExecutor(CONCURRENT_FETCHES) as pool:
        loads = [pool.submit(live.get, path) for path in paths]
        deadline = time.monotonic() + ANSWERED_WITHIN
        while silent.script.count("login") < CONCURRENT_FETCHES:
            assert time.monotonic() < deadline, "the page loads did not reach the server"
            time.sleep(0.05)
        refused = live.get(page("mrs_silent", *MT, "b1"))
        answers = [load.result() for load in loads]
    assert refused.status == 503, refused
    # Well before any of the fetches holding the slots could end.
    assert refused.seconds < 5
    assert all(answer.status == 502 for answer in answers), answers


def test_a_connection_with_a_shorter_timeout_keeps_it(
    live: LiveApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's budget only shortens the connection's: a 1 s ``timeout`` stays 1 s."""
    script = Script(routes={"login": Misbehaviour(hang=True)})
    with HostileServer(script) as server:
        conn = json.loads(connection_json(server.port, "pw", timeout=1))
        monkeypatch.setenv("AIRFLOW_CONN_MRS_QUICK", json.dumps(conn))
        answer = live.get(page("mrs_quick", *MT, "b1"))
    assert answer.status == 502, answer
    assert "within 1 s" in answer.text, answer.text
