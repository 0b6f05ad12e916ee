"""What a worker that looks idle is waiting on: logged on SIGUSR1.

asyncio's own task stacks stop at a task's outermost coroutine (``await task``,
``async for``), which says nothing about where a stalled pipeline waits, and
Faust's Kafka consumer runs its own event loop in another thread. This walks
every await chain to its end, in every event loop of the process, adds every
thread's Python stack, and the consumer's flow and partition state.
"""

from __future__ import annotations

import asyncio
import gc
import io
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any


def _frames(awaitable: Any, depth: int = 40) -> Iterator[str]:
    """``file:line function`` of each coroutine or generator along an await chain."""
    seen = set()
    while awaitable is not None and depth > 0 and id(awaitable) not in seen:
        seen.add(id(awaitable))
        depth -= 1
        frame = (getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
                 or getattr(awaitable, "ag_frame", None))
        if frame is not None:
            yield f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"
        nxt = (getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
               or getattr(awaitable, "ag_await", None))
        if nxt is None and frame is None:
            # Wrappers (an async generator's asend, a coroutine wrapper, Faust's actor)
            # hide what they drive: find it among what they refer to.
            nxt = next((r for r in gc.get_referents(awaitable)
                        if any(hasattr(r, a) for a in ("cr_frame", "ag_frame", "gi_frame"))), None)
        if isinstance(nxt, asyncio.Task):
            yield f"  awaits task {nxt.get_name()}"
            nxt = nxt.get_coro()
        elif isinstance(nxt, asyncio.Future):
            yield f"  awaits {nxt!r:.200}"
            nxt = None
        awaitable = nxt


def _loops(app: Any) -> list[asyncio.AbstractEventLoop]:
    """This thread's loop and the Kafka consumer thread's (gc cannot list them: the worker freezes gc)."""
    loops = [asyncio.get_running_loop()]
    thread = getattr(getattr(app, "_consumer", None), "_thread", None)
    thread_loop = getattr(thread, "thread_loop", None)
    if thread_loop is not None and thread_loop not in loops and not thread_loop.is_closed():
        loops.append(thread_loop)
    return loops


def _consumer_state(app: Any) -> str:
    consumer = getattr(app, "_consumer", None)
    if consumer is None:
        return "consumer: none"
    parts = [f"flow_active={getattr(consumer, 'flow_active', '?')}",
             f"suspend_flow={consumer.suspend_flow.is_set()}",
             f"app.flow_control.active={app.flow_control.is_active()}",
             f"rebalancing={app.rebalancing}",
             f"paused={sorted(map(tuple, getattr(consumer, '_paused_partitions', ())))}",
             f"active={sorted(map(tuple, getattr(consumer, '_active_partitions', None) or ()))}",
             f"buffered={sorted(map(tuple, getattr(consumer, '_buffered_partitions', ())))}",
             f"assignment={sorted(map(tuple, consumer.assignment()))}",
             f"unacked={len(consumer._unacked_messages)}",
             f"read_offset={dict((tuple(k), v) for k, v in consumer._read_offset.items())}"]
    channels = {id(ch): ch for chans in getattr(app.topics, "_tp_index", {}).values() for ch in chans}
    for channel in channels.values():
        queue = getattr(channel, "_queue", None)
        size = "no queue" if queue is None else f"{queue.qsize()}/{queue.maxsize}"
        parts.append(f"channel {channel!r:.100}: buffered {size}")
    return "\n".join(parts)


def report(app: Any = None) -> str:
    """Every task of every event loop with its await chain, every thread's stack, the consumer."""
    out = io.StringIO()
    for loop in _loops(app):
        tasks = asyncio.all_tasks(loop)
        print(f"=== event loop {id(loop):#x}: {len(tasks)} tasks", file=out)
        for task in tasks:
            print(f"--- {task.get_name()}", file=out)
            for line in _frames(task.get_coro()):
                print(f"    {line}", file=out)
    for thread_id, frame in sys._current_frames().items():
        name = next((t.name for t in threading.enumerate() if t.ident == thread_id), "?")
        print(f"=== thread {name}", file=out)
        out.write("".join(traceback.format_stack(frame, limit=15)))
    if app is not None:
        try:
            print("=== consumer\n" + _consumer_state(app), file=out)
        except Exception as exc:  # noqa: BLE001 - a diagnostic must not take the worker down
            print(f"=== consumer state unavailable: {exc!r}", file=out)
    return out.getvalue()
