"""The worker's hand-off: inline when the callback does not wait, Faust's race when it does, and
quiet when a rebalance cancels it (a Faust bug ended the fetch loop)."""

from __future__ import annotations

import asyncio

import mode
import pytest

from streams.transport import abandonable, hand_off

pytestmark = pytest.mark.unit


async def _race(*coros):
    """What Faust's ``wait_first`` does: tasks, first completed wins, the rest cancelled."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return done


def test_a_callback_that_does_not_wait_runs_inline_without_a_race():
    log = []

    async def callback():
        log.append("ran")

    async def main():
        raced = []

        async def race(*coros):
            raced.append(coros)
            return await _race(*coros)

        suspend = asyncio.Event()
        await hand_off(callback(), suspend.wait(), race)
        return raced

    assert asyncio.run(main()) == [] and log == ["ran"]


def test_a_callback_that_waits_finishes_through_the_race():
    log = []

    async def callback(gate):
        log.append("queued")
        await gate
        log.append(("delivered", gate.result()))

    async def main():
        loop = asyncio.get_running_loop()
        gate = loop.create_future()
        loop.call_later(0.01, gate.set_result, 42)
        await hand_off(callback(gate), asyncio.Event().wait(), _race)

    asyncio.run(main())
    assert log == ["queued", ("delivered", 42)]


def test_a_flow_suspension_cancels_a_waiting_callback_which_can_clean_up():
    log = []

    async def callback(queue):
        try:
            await queue.put("message")  # the queue is full: this waits
        except asyncio.CancelledError:
            log.append("withdrawn")
            raise

    async def main():
        queue = asyncio.Queue(maxsize=1)
        queue.put_nowait("earlier")
        suspend = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, suspend.set)
        await hand_off(callback(queue), suspend.wait(), _race)
        return queue.qsize(), len(queue._putters)  # nothing left waiting to put

    assert asyncio.run(main()) == (1, 0)
    assert log == ["withdrawn"]


def test_errors_reach_the_callback_or_the_caller():
    async def fails_at_once():
        raise ValueError("at once")

    async def catches_a_failed_future(gate, seen):
        try:
            await gate
        except KeyError as exc:
            seen.append(exc.args[0])

    async def main():
        suspend = asyncio.Event()
        with pytest.raises(ValueError):
            await hand_off(fails_at_once(), suspend.wait(), _race)
        loop, seen = asyncio.get_running_loop(), []
        gate = loop.create_future()
        loop.call_later(0.01, gate.set_exception, KeyError("late"))
        await hand_off(catches_a_failed_future(gate, seen), asyncio.Event().wait(), _race)
        return seen

    assert asyncio.run(main()) == ["late"]


def test_a_bare_yield_is_one_turn_of_the_loop():
    async def yields_once(log):
        await asyncio.sleep(0)
        log.append("after")

    async def main():
        log = []
        await hand_off(yields_once(log), asyncio.Event().wait(), _race)
        return log

    assert asyncio.run(main()) == ["after"]


class _Service(mode.Service):
    """A mode service: its ``wait_first`` is the race Faust's consumer uses."""


def _rebalance_clears_a_full_buffer(hand):
    """Faust's revocation in one step: suspend the flow, then clear the buffers (cancelling
    a blocked put). Returns what awaiting ``hand(put, suspend_wait, race)`` gives."""
    async def main():
        queue = asyncio.Queue(maxsize=1)
        queue.put_nowait("buffered")
        suspend = asyncio.Event()

        def revoke():
            suspend.set()  # consumer.stop_flow()
            for putter in list(queue._putters):  # ThrowableQueue.clear(): putters cancelled
                putter.cancel()
            queue._putters.clear()

        asyncio.get_running_loop().call_later(0.01, revoke)
        try:
            return "returned", await hand(queue.put("fetched"), suspend.wait(), _Service().wait_first)
        except asyncio.CancelledError:
            return "cancelled", None
    return asyncio.run(main())


def test_faust_race_lets_a_cleared_buffer_cancel_the_fetch_loop():
    # The Faust bug itself: this CancelledError ended the consumer's fetch loop for good.
    assert _rebalance_clears_a_full_buffer(lambda put, wait, race: race(put, wait))[0] == "cancelled"


def test_a_hand_off_cancelled_by_a_rebalance_ends_quietly():
    assert _rebalance_clears_a_full_buffer(
        lambda put, wait, race: abandonable(race(put, wait))) == ("returned", None)
    assert _rebalance_clears_a_full_buffer(
        lambda put, wait, race: abandonable(hand_off(put, wait, race))) == ("returned", None)


def test_a_cancelled_fetch_loop_still_stops():
    async def main():
        gate = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(abandonable(gate))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(main())
