"""Odd progress from a server never makes the trigger poll faster than ``poll_interval``.

The trigger slows its polls while a batch is far from done and speeds up to ``poll_interval``
near the end. A server reporting more rows finished than the batch has, or fewer than before,
must not turn that into a busy loop. Checked on ``_next_interval`` as a property, and end to
end against a stand-in server (the reference server never reports such counts) that answers a
running batch with scripted counts and records every status poll.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import threading
import time
from collections.abc import AsyncGenerator, Callable
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

import pytest
from airflow.triggers.base import TriggerEvent
from hypothesis import example, given
from hypothesis import strategies as st

from airflow_provider.triggers import MrsDeployBatchTrigger
from tests.faults.conftest import ConnSetter
from tests.faults.conftest import set_default_conn as set_default_conn  # the fixture
from tests.faults.helpers import run_trigger
from tests.support.loopback import LoopbackHTTPServer, LoopbackServer

SERVICE = ("oddService", "v1")
BATCH_ID = "6f1c1d2e-5a4b-4c3d-9e8f-0a1b2c3d4e5f"
PASSWORD = "stand-in-password"

#: Counts of the batch at the n-th status poll (0-based): (completedItemCount, totalItemCount).
Script = Callable[[int], tuple[int, int]]


def trigger(**kwargs: Any) -> MrsDeployBatchTrigger:
    return MrsDeployBatchTrigger(
        batch_ids=[BATCH_ID], service_name=SERVICE[0], service_version=SERVICE[1], **kwargs
    )


# -- _next_interval as a property ------------------------------------------------------------------

intervals = st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False)
fractions = st.floats(allow_nan=False)  # any number, infinities included


@given(
    fraction=fractions,
    poll_interval=intervals,
    max_poll_interval=st.none() | st.floats(min_value=0.001, max_value=1e7, allow_nan=False),
)
@example(fraction=3.0, poll_interval=0.5, max_poll_interval=2.0)  # more rows done than exist
@example(fraction=-1.0, poll_interval=0.5, max_poll_interval=2.0)
@example(fraction=math.inf, poll_interval=0.5, max_poll_interval=2.0)
@example(fraction=-math.inf, poll_interval=0.5, max_poll_interval=2.0)
@example(fraction=0.0, poll_interval=5.0, max_poll_interval=1.0)  # slowest below fastest
def test_next_interval_stays_between_poll_and_max_poll_interval(
    fraction: float, poll_interval: float, max_poll_interval: float | None
) -> None:
    waiting = trigger(poll_interval=poll_interval, max_poll_interval=max_poll_interval)
    # A slowest poll below poll_interval is raised to it (and None means poll_interval).
    expected_max = poll_interval if max_poll_interval is None else max_poll_interval
    assert waiting.max_poll_interval == max(poll_interval, expected_max)
    interval = waiting._next_interval(fraction)
    assert math.isfinite(interval)
    assert poll_interval <= interval <= waiting.max_poll_interval * (1 + 1e-12)


@given(low=fractions, high=fractions)
def test_next_interval_never_grows_as_the_batch_advances(low: float, high: float) -> None:
    low, high = min(low, high), max(low, high)
    waiting = trigger(poll_interval=0.5, max_poll_interval=2.0)
    assert waiting._next_interval(low) >= waiting._next_interval(high)


@given(fraction=fractions, poll_interval=intervals, left=st.floats(min_value=-100, max_value=100))
def test_next_interval_never_passes_the_deadline(
    fraction: float, poll_interval: float, left: float
) -> None:
    before = time.time()
    waiting = trigger(
        poll_interval=poll_interval, max_poll_interval=poll_interval * 4, deadline=before + left
    )
    interval = waiting._next_interval(fraction)
    after = time.time()
    # Never past the deadline, and never faster than poll_interval unless the deadline is closer.
    assert 0.0 <= interval <= max(left, 0.0)
    assert interval >= min(poll_interval, before + left - after)


@pytest.mark.parametrize("deadline_in", [None, 100.0])
def test_a_nan_fraction_polls_at_a_sane_interval(deadline_in: float | None) -> None:
    """A fraction that is not a number (0/0 somewhere upstream) must not become a NaN sleep:
    ``asyncio.sleep(nan)`` returns at once, which would poll in a busy loop."""
    deadline = None if deadline_in is None else time.time() + deadline_in
    waiting = trigger(poll_interval=0.5, max_poll_interval=2.0, deadline=deadline)
    interval = waiting._next_interval(math.nan)
    assert math.isfinite(interval)
    assert 0.5 <= interval <= 2.0


# -- end to end: a server with odd counts ----------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0] != "/login":
            self._send(404, {"code": 404, "message": "not here", "exceptionType": "NotFound"})
            return
        now = int(time.time())
        self._send(
            200,
            {
                "token_type": "Bearer",
                "access_token": "stand-in-access-token",
                "expires_in": 3600,
                "expires_on": now + 3600,
                "refresh_token": "stand-in-refresh-token",
            },
        )

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path != f"/api/{SERVICE[0]}/{SERVICE[1]}/batch/{BATCH_ID}":
            self._send(404, {"code": 404, "message": "not here", "exceptionType": "NotFound"})
            return
        with self.server.lock:
            number = len(self.server.polls)
            self.server.polls.append(time.monotonic())
        completed, total = self.server.script(number)
        self._send(
            200,
            {
                "state": "InProgress",
                "completedItemCount": completed,
                "totalItemCount": total,
                "batchExecutionResults": [],
            },
        )

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(LoopbackHTTPServer):
    script: Script
    polls: list[float]
    lock: threading.Lock


class OddProgressServer(LoopbackServer):
    """A web node whose one batch runs forever with scripted counts, on a free loopback port.

    :attr:`polls` holds the (monotonic) time of every status poll it answered.
    """

    def __init__(self, script: Script) -> None:
        server = _Server(_Handler)
        server.script = script
        server.polls = []
        server.lock = threading.Lock()
        self._odd = server
        super().__init__(server)

    @property
    def polls(self) -> list[float]:
        with self._odd.lock:
            return list(self._odd.polls)


#: How long each trigger runs, and its intervals.
RUN_FOR, POLL, MAX_POLL = 3.0, 0.5, 2.0


async def run_for(waiting: MrsDeployBatchTrigger, seconds: float) -> TriggerEvent | None:
    """Run the trigger for ``seconds``; its event if it yielded one by then, else None."""
    generator = cast(AsyncGenerator[TriggerEvent, None], waiting.run())
    try:
        return await asyncio.wait_for(generator.__anext__(), seconds)
    except TimeoutError:
        return None
    finally:
        await generator.aclose()


def more_done_than_exist(number: int) -> tuple[int, int]:
    """Three times the batch's rows reported done, growing further at every poll."""
    return 30 + 10 * number, 10


def shrinking(number: int) -> tuple[int, int]:
    """Counts going backwards: almost done, then less and less, then more rows than before."""
    return [(9, 10), (5, 10), (1, 10), (0, 10), (7, 5)][number % 5]


@pytest.mark.parametrize(
    "script", [more_done_than_exist, shrinking], ids=["more-done-than-exist", "shrinking"]
)
def test_odd_counts_do_not_make_the_trigger_poll_fast(
    set_default_conn: ConnSetter, script: Script
) -> None:
    with OddProgressServer(script) as server:
        set_default_conn(server.port, PASSWORD)
        waiting = trigger(poll_interval=POLL, max_poll_interval=MAX_POLL)
        event = asyncio.run(run_for(waiting, RUN_FOR))
        polls = server.polls
    assert event is None  # a running batch: no event, whatever its counts
    assert polls, "the trigger never polled the stand-in server"
    # A busy loop polls hundreds of times in three seconds; one poll per poll_interval at most.
    assert len(polls) <= RUN_FOR / POLL + 2, f"{len(polls)} status polls in {RUN_FOR} s"
    gaps = [later - earlier for earlier, later in itertools.pairwise(polls)]
    assert all(gap >= POLL * 0.9 for gap in gaps), gaps


def test_counts_past_the_total_still_poll_at_poll_interval(set_default_conn: ConnSetter) -> None:
    """Clamping must not stop the wait either: a batch reported past 100 % is polled on."""
    with OddProgressServer(more_done_than_exist) as server:
        set_default_conn(server.port, PASSWORD)
        waiting = trigger(poll_interval=POLL, max_poll_interval=MAX_POLL)
        asyncio.run(run_for(waiting, RUN_FOR))
        polls = server.polls
    # At poll_interval (the fraction counts as done), not at max_poll_interval: at least one
    # poll more than the slowest pace would make.
    assert len(polls) > RUN_FOR / MAX_POLL + 1, f"{len(polls)} status polls in {RUN_FOR} s"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_ids": [".."], "service_name": "mtService", "service_version": "v1.0.0"},
        {"batch_ids": [], "service_name": "mtService", "service_version": "v1.0.0"},
        {"batch_set": {"kind": "mrsdeploy_batch_set", "version": 2}},
        {"batch_set": "not a set"},
        {"batch_ids": ["b1"]},
        {"batch_ids": ["b1"], "service_name": "s", "service_version": "v", "poll_interval": "x"},
        {"batch_ids": ["b1"], "service_name": "s", "service_version": "v", "deadline": "soon"},
    ],
    ids=[
        "dot-dot",
        "no-ids",
        "newer-set",
        "junk-set",
        "no-service",
        "bad-interval",
        "bad-deadline",
    ],
)
def test_unusable_kwargs_never_raise_and_end_in_an_error_event(kwargs: dict[str, Any]) -> None:
    """The triggerer re-creates triggers in its main loop: unusable kwargs (stored by another
    release, say) must not raise there, and the wait must end with an error event naming the
    problem, after the same kwargs came back through serialize()."""
    trigger = MrsDeployBatchTrigger(**kwargs)
    classpath, again = trigger.serialize()
    assert classpath.endswith("MrsDeployBatchTrigger")
    recreated = MrsDeployBatchTrigger(**json.loads(json.dumps(again)))
    payload = run_trigger(recreated, timeout=30)
    assert payload["status"] == "error", payload
    assert payload["message"].startswith("the wait cannot start: ")
