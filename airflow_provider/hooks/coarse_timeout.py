"""A request timeout checked by one sweep per event loop instead of one timer per request.

``asyncio.timeout`` arms a timer per use: a timer handle pushed on the loop's heap, cancelled
when the block ends and left there until the loop cleans its heap. A collect that lands
thousands of small files, or a triggerer polling a thousand batches, uses one per request, and
measured on loopback that timer costs about a tenth of the client's CPU per file. Request
timeouts are seconds long and need no millisecond precision, so here every block in flight on a
loop is registered in a set, and one callback per loop, armed only while that set is not empty,
sweeps it every :data:`TICK` seconds and cancels the tasks whose deadline has passed.

The cancellation is turned into ``TimeoutError`` exactly as ``asyncio.timeout`` does (the task's
cancel count is compared with the one at entry), so a cancellation from elsewhere still comes
through as ``CancelledError`` and nested timeouts keep working. A deadline fires at most
:data:`TICK` seconds late.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

#: Seconds between sweeps of a loop's blocks in flight (the most a deadline fires late).
TICK = 0.05


class _Sweep:
    """The blocks in flight on one loop, and the callback that checks their deadlines."""

    __slots__ = ("armed", "blocks", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.blocks: set[coarse_timeout] = set()
        self.armed = False

    def add(self, block: coarse_timeout) -> None:
        self.blocks.add(block)
        if not self.armed:
            self.armed = True
            self.loop.call_later(TICK, self.run)

    def run(self) -> None:
        now = self.loop.time()
        expired = [block for block in self.blocks if block.deadline <= now]
        for block in expired:
            self.blocks.discard(block)
            block.expire()
        if self.blocks:
            self.loop.call_later(TICK, self.run)
        else:
            self.armed = False
            if _SWEEPS.get(self.loop) is self:
                del _SWEEPS[self.loop]  # an idle loop is not kept alive by this module


#: The sweep of each loop with blocks in flight (dropped when it has none left).
_SWEEPS: dict[asyncio.AbstractEventLoop, _Sweep] = {}


def _forget_closed_loops() -> None:
    """Drop the sweeps of loops that closed with a sweep still armed (its callback never ran)."""
    for loop in [loop for loop in list(_SWEEPS) if loop.is_closed()]:
        _SWEEPS.pop(loop, None)


class coarse_timeout:
    """``async with coarse_timeout(seconds):`` raises ``TimeoutError`` when the block takes longer.

    :param seconds: the longest the block may take.
    """

    __slots__ = ("_cancelling", "_expired", "_sweep", "_task", "deadline", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = 0.0
        self._expired = False

    async def __aenter__(self) -> coarse_timeout:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("coarse_timeout should be used inside a task")
        loop = task.get_loop()
        self._task = task
        self._cancelling = task.cancelling()
        self.deadline = loop.time() + self.seconds
        sweep = _SWEEPS.get(loop)
        if sweep is None:
            _forget_closed_loops()
            sweep = _SWEEPS[loop] = _Sweep(loop)
        self._sweep = sweep
        sweep.add(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._sweep.blocks.discard(self)
        if (
            self._expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc

    @property
    def expired(self) -> bool:
        """Whether the deadline passed while the block ran."""
        return self._expired

    def expire(self) -> None:
        """Called by the sweep once the deadline has passed: cancel the block's task."""
        if not self._expired and not self._task.done():
            self._expired = True
            self._task.cancel()
