"""The request timeout swept once per loop: it behaves like ``asyncio.timeout`` (a late block
raises TimeoutError, a cancellation from elsewhere stays a cancellation, nesting works), cancels
only the blocks whose deadline passed, and keeps no loop alive once it is idle."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from airflow_provider.hooks import coarse_timeout as module
from airflow_provider.hooks.coarse_timeout import TICK, coarse_timeout


def test_a_block_past_its_deadline_raises_timeout_error() -> None:
    async def late() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            async with coarse_timeout(0.1) as block:
                await asyncio.sleep(10)
        assert block.expired
        return loop.time() - started

    took = asyncio.run(late())
    assert 0.1 <= took < 5  # not before the deadline; and it did fire (not the 10 s sleep)


def test_a_block_in_time_is_left_alone_afterwards() -> None:
    """Finishing in time unregisters the block: sleeping past its deadline is not cancelled."""

    async def in_time() -> bool:
        async with coarse_timeout(0.05) as block:
            await asyncio.sleep(0)
        await asyncio.sleep(0.05 + 3 * TICK)
        return block.expired

    assert asyncio.run(in_time()) is False


def test_only_the_late_blocks_are_cancelled() -> None:
    async def one(seconds: float, work: float) -> str:
        try:
            async with coarse_timeout(seconds):
                await asyncio.sleep(work)
        except TimeoutError:
            return "timed out"
        return "done"

    async def many() -> list[str]:
        return await asyncio.gather(
            *(one(0.1, 5) for _ in range(3)), *(one(5, 0.01) for _ in range(3))
        )

    assert asyncio.run(many()) == ["timed out"] * 3 + ["done"] * 3


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def cancelled_from_outside() -> None:
        async def inner() -> None:
            async with coarse_timeout(30):
                await asyncio.sleep(30)

        task = asyncio.create_task(inner())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled_from_outside())


def test_an_outer_asyncio_timeout_that_expires_first_is_its_own() -> None:
    async def nested() -> str:
        try:
            async with asyncio.timeout(0.05):
                async with coarse_timeout(30) as inner:
                    await asyncio.sleep(30)
        except TimeoutError:
            return "outer" if not inner.expired else "inner"
        return "none"

    assert asyncio.run(nested()) == "outer"


def test_an_inner_block_that_expires_inside_an_outer_asyncio_timeout() -> None:
    async def nested() -> tuple[bool, bool]:
        async with asyncio.timeout(30) as outer:
            with pytest.raises(TimeoutError):
                async with coarse_timeout(0.05):
                    await asyncio.sleep(30)
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        return outer.expired(), True

    assert asyncio.run(nested()) == (False, True)


def test_an_idle_loop_is_not_kept_alive() -> None:
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one_block() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        async with coarse_timeout(1):
            await asyncio.sleep(0)
        await asyncio.sleep(2 * TICK)  # the sweep runs, finds nothing and lets go

    asyncio.run(one_block())
    gc.collect()
    assert loops[0]() is None


def test_a_loop_closed_with_a_sweep_armed_is_forgotten() -> None:
    """A loop that ends while its sweep is armed never runs it; the next sweep drops it."""

    async def leave_armed() -> None:
        async with coarse_timeout(1):
            await asyncio.sleep(0)

    closed = asyncio.new_event_loop()
    closed.run_until_complete(leave_armed())
    closed.close()
    assert closed in module._SWEEPS

    async def later() -> None:
        async with coarse_timeout(1):
            await asyncio.sleep(0)

    asyncio.run(later())
    assert closed not in module._SWEEPS


def test_outside_a_task_it_says_so() -> None:
    """In a loop's plain callback there is no task to cancel."""
    errors: list[BaseException] = []

    def callback() -> None:
        entering = coarse_timeout(1).__aenter__()
        try:
            entering.send(None)
        except RuntimeError as err:
            errors.append(err)

    async def main() -> None:
        asyncio.get_running_loop().call_soon(callback)
        await asyncio.sleep(0.01)

    asyncio.run(main())
    assert len(errors) == 1 and "inside a task" in str(errors[0])
