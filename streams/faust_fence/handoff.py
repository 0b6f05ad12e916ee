"""Handing a fetched message to the streams: inline when it can, Faust's race when it must wait.

Faust's consumer hands every fetched message to the streams with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: two
tasks and an ``asyncio.wait`` per message, so that a rebalance that suspends
the flow can abandon a hand-off blocked on a full stream buffer. Profiling
the worker showed that this alone took about half of the consumer's CPU (a
bare counting agent: ~15,000 -> ~33,000 events per CPU-second without it).

Almost every hand-off completes without waiting (the stream's buffer has
room), so :func:`hand_off` first runs the callback synchronously, up to its
first suspension. If it finishes there, no task was needed. If it has to
wait, the rest of it runs exactly as Faust runs it: as a task raced against a
flow suspension, which cancels it. A rebalance therefore sees the same
behaviour as with Faust's own code; only the common case is cheaper.

A fix to a Faust bug that stalled workers after rebalances: when a rebalance
starts, Faust suspends the flow *and* clears the streams' buffers in one step;
clearing cancels a hand-off blocked on a full buffer, so the race can end with
the callback cancelled, and ``wait_first`` re-raises that ``CancelledError``
into the consumer's fetch loop — which ends it. The fetcher is never
restarted: the worker stays in the group, "ready", and consumes nothing.
:func:`abandonable` lets such a hand-off end quietly (the message is read
again after the seek to the committed offsets that follows every rebalance,
exactly like a hand-off the suspension wins), and still propagates a
cancellation of the fetch loop itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any


async def hand_off(callback: Coroutine, suspend_wait: Coroutine,
                   race: Callable[..., Awaitable[Any]]) -> Any:
    """Run ``callback`` to its end: inline while it does not wait, else via ``race``.

    ``race(a, b)`` is Faust's ``wait_first``: it runs both as tasks and cancels
    the loser. ``suspend_wait`` is only started when the callback has to wait.
    """
    try:
        waiting_on = callback.send(None)
    except StopIteration:
        suspend_wait.close()  # never started: closing it avoids a "never awaited" warning
        return None
    except BaseException:
        suspend_wait.close()
        raise
    return await race(_resume(callback, waiting_on), suspend_wait)


async def abandonable(hand: Awaitable[Any]) -> Any:
    """Await a hand-off; one whose callback a rebalance cancelled ends with None.

    Only a cancellation of the awaiting task itself (a worker stopping) propagates.
    """
    try:
        return await hand
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        return None


async def _resume(coro: Coroutine, waiting_on: Any) -> Any:
    """Drive a coroutine that already yielded ``waiting_on`` to its end, as a task would."""
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)  # a bare yield: give the loop one turn
            else:
                # What a Task does with a future its coroutine yielded: take over
                # the "blocking" flag, then wait for it.
                waiting_on._asyncio_future_blocking = False
                await waiting_on
        except asyncio.CancelledError as cancelled:
            if waiting_on is not None and waiting_on.cancelled():
                pass  # the awaited future itself was cancelled: the coroutine sees it below
            else:
                # We are cancelled (the flow was suspended): cancel the coroutine too,
                # so that it withdraws from whatever it waits on (a queue's putters).
                try:
                    waiting_on = coro.throw(cancelled)
                except StopIteration as stop:
                    return stop.value
                continue
        except BaseException:
            pass  # the future failed: the coroutine gets its exception from send() below
        try:
            waiting_on = coro.send(None)
        except StopIteration as stop:
            return stop.value
