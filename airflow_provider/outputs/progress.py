"""Progress lines for long collects: done / total, rate and time left, at a bounded interval."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol


class TaskLogger(Protocol):
    """What is logged to: a :class:`logging.Logger` or the task's own logger."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...
    def warning(self, msg: Any, /, *args: Any) -> Any: ...


#: Seconds between two progress lines, unless the operator says otherwise.
DEFAULT_INTERVAL = 10.0


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ProgressLog:
    """Counts units of work and logs a line at most every ``interval`` seconds.

    :param what: the unit counted, plural (``files landed``, ``rows listed``).
    :param total: how many units there are.
    :param logger: where lines go.
    :param interval: least seconds between two lines (the first comes after one interval).
    :param clock: monotonic seconds; replaceable in tests.
    """

    def __init__(
        self,
        what: str,
        total: int,
        logger: TaskLogger,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = total
        self.done = 0
        self._log = logger
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._next = self._started + interval
        self._logged = -1

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more units; log a line when an interval has passed."""
        self.done += count
        now = self._clock()
        if now >= self._next:
            self._next = now + self._interval
            self._logged = self.done
            self._log.info("%s", self.line(now))

    def finish(self) -> None:
        """Log the closing line (unless the last line already said the same)."""
        if self.total and self._logged != self.done:
            self._logged = self.done
            self._log.info("%s", self.line())

    def line(self, now: float | None = None) -> str:
        """``1,200 of 50,000 files landed (2.4%), 240/s, about 3m23s left``."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        share = self.done / self.total if self.total else 1.0
        text = f"{self.done:,} of {self.total:,} {self.what} ({share:.1%}), {rate:,.0f}/s"
        if 0 < self.done < self.total:
            text += f", about {_duration((self.total - self.done) / rate)} left"
        return text
