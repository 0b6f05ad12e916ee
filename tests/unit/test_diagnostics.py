"""streams.faust_fence.diagnostics: the report reaches the innermost await of every task."""

from __future__ import annotations

import asyncio

import pytest

from streams.faust_fence import diagnostics

pytestmark = pytest.mark.unit


async def _innermost(event: asyncio.Event) -> None:
    await event.wait()


async def _agen(event: asyncio.Event):
    await _innermost(event)
    yield 1


async def _outer(event: asyncio.Event) -> None:
    async for _ in _agen(event):
        pass


def test_report_follows_await_chains_through_async_generators_and_tasks() -> None:
    async def scenario() -> str:
        event = asyncio.Event()
        task = asyncio.create_task(_outer(event), name="stuck-one")
        waiter = asyncio.create_task(asyncio.wait_for(task, 10), name="waiter")
        await asyncio.sleep(0.01)
        text = diagnostics.report()
        event.set()
        await waiter
        return text

    text = asyncio.run(scenario())
    stuck = text.split("--- stuck-one", 1)[1].split("---", 1)[0]
    assert [name for name in ("_outer", "_agen", "_innermost") if name in stuck] == ["_outer", "_agen", "_innermost"]
    assert "=== thread MainThread" in text
