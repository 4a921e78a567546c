"""The absolute deadline of the calls made in a scope: a wait's end bounds its requests too.

A wait (the trigger, a poking sensor, ``wait_for_completion``) has a wall-clock deadline. The
calls it makes on the way must not outlive it: a request's timeout is cut to the time left, and
a retry the deadline would interrupt is not started (a server asking, with ``Retry-After``, to
come back after the deadline is taken at its word). The deadline is a context variable, so it
follows the code that set it across ``await`` and into the tasks it starts, and never leaks into
another task or thread.

A wait's last status check is made once the deadline has passed, and gets a short grace
(:data:`FINAL_CHECK_GRACE`) to answer: whether the batch finished in time is decided by the
server's answer at the deadline, never by a check cut short a moment before it.
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "mrsdeploy_calls_deadline", default=None
)

#: Shortest timeout given to a request: one started with almost no time left still gets an
#: answer from a server that is up, instead of failing before it could.
MIN_REQUEST_TIMEOUT = 0.05

#: How long the check made at the deadline (the wait's last) may take, seconds: long enough
#: for a server under load to answer one status request, short against Airflow's own backstop
#: (a minute past the deadline).
FINAL_CHECK_GRACE = 5.0

#: The longest interval or timeout taken, seconds (about 31 years): longer ones overflowed the
#: clock arithmetic of a wait (``time.sleep``, Airflow's deferral timeout) only once the
#: batches had started.
MAX_SECONDS = 1e9


def as_seconds(value: float | timedelta) -> float:
    """A duration given as a number of seconds or a ``timedelta``, in seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def is_duration(value: object) -> bool:
    """Whether ``value`` is a ``timedelta`` or a real number (not a bool)."""
    return isinstance(value, (int, float, timedelta)) and not isinstance(value, bool)


def check_interval(value: object, name: str) -> float:
    """A poll interval in seconds: a finite number above 0, or a ``timedelta`` (as a sensor's
    ``poke_interval`` may be).

    NaN or infinity would make a wait spin or never check again, and an interval of 0 or less
    would poll as fast as the server answers (a 2 s wait made 1,800 requests).

    :raises ValueError: naming the parameter and the value given.
    """
    try:
        seconds = as_seconds(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_SECONDS:
        raise ValueError(
            f"{name} must be a finite number of seconds above 0 and at most {MAX_SECONDS:.0e}, "
            f"given as a number or a timedelta (got {value!r})"
        )
    return seconds


def check_timeout(value: object, name: str = "timeout") -> float | timedelta | None:
    """A wait's timeout: None (no limit), a ``timedelta`` or a number of seconds, finite and
    >= 0.

    Checked while the DAG is parsed: NaN made a deadline no time ever passes (the wait polled
    forever), and text failed the wait after the batches had started, leaving them running.

    :raises ValueError: naming the parameter and the value given.
    """
    if value is None:
        return None
    seconds = as_seconds(value) if is_duration(value) else math.nan  # type: ignore[arg-type]
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS:
        raise ValueError(
            f"{name} must be None, a timedelta or a finite number of seconds >= 0 and at most "
            f"{MAX_SECONDS:.0e} (got {value!r})"
        )
    return value if isinstance(value, timedelta) else seconds


def check_deadline(value: object) -> float | None:
    """A trigger's absolute deadline (epoch seconds): None or a finite number.

    :raises ValueError: for anything else (NaN is a deadline that never comes).
    """
    if value is None:
        return None
    try:
        deadline = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        deadline = math.nan
    if not math.isfinite(deadline):
        raise ValueError(f"deadline must be None or finite epoch seconds (got {value!r})")
    return deadline


def checks_end_by(deadline: float | None, started: float) -> float | None:
    """When a status check started at ``started`` must end: at the deadline, or, for the check
    made once the deadline has passed (the last), :data:`FINAL_CHECK_GRACE` after it started.

    :param deadline: the wait's deadline (epoch seconds), or None.
    :param started: when the check starts (epoch seconds).
    """
    if deadline is None:
        return None
    return deadline if started < deadline else started + FINAL_CHECK_GRACE


def is_last_check(deadline: float | None, started: float) -> bool:
    """Whether a check started at ``started`` is the wait's last (the deadline has passed)."""
    return deadline is not None and started >= deadline


@contextmanager
def calls_end_by(deadline: float | None) -> Iterator[None]:
    """Within the block, no request or retry wait of the hook runs past ``deadline``.

    Nested scopes keep the earlier deadline.

    :param deadline: epoch seconds, or None for no deadline (the block changes nothing).
    """
    current = _DEADLINE.get()
    if deadline is None or (current is not None and current <= deadline):
        yield
        return
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left(now: float | None = None) -> float | None:
    """Seconds until the scope's deadline (negative once passed), or None without one.

    :param now: epoch seconds (defaults to the clock).
    """
    deadline = _DEADLINE.get()
    if deadline is None:
        return None
    return deadline - (time.time() if now is None else now)


def request_timeout(timeout: float) -> float:
    """The timeout of one request: the connection's ``timeout``, cut to the time left.

    :param timeout: the connection's per-request timeout, seconds.
    """
    left = time_left()
    if left is None:
        return timeout
    return max(min(timeout, left), MIN_REQUEST_TIMEOUT)
