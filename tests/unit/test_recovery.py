"""Table recovery in bunches (``streams/faust_fence/recovery.py``): the state it rebuilds.

The worker app's recovery manager is run on its own event loop, fed real
Faust events of a changelog partition through the real changelog queue, as
the consumer feeds it during a takeover; no broker needed.
"""

from __future__ import annotations

import asyncio

import pytest
from faust.events import Event
from faust.types import TP
from faust.types.tuples import Message

from common.config import Settings
from streams.app import declare
from streams.domain.rating import load_tariffs
from streams.faust_fence.recovery import Recovery, TableManager

pytestmark = pytest.mark.unit


def _worker(tmp_path):
    settings = Settings.from_env({}, state_dir=str(tmp_path), worker_group="recovery-test")
    return declare(settings, load_tariffs(settings.tariffs_path))


def _event(app, tp: TP, offset: int, key: bytes, value: bytes | None) -> Event:
    message = Message(tp.topic, tp.partition, offset, 0.0, 0, {}, key, value, None)
    return Event(app, key, value, {}, message)


def test_the_worker_app_recovers_tables_with_the_fence_recovery(tmp_path):
    worker = _worker(tmp_path)
    assert isinstance(worker.app.tables, TableManager)
    assert isinstance(worker.app.tables.recovery, Recovery)


def test_a_replay_rebuilds_the_partition_exactly_and_ends_recovery(tmp_path):
    worker = _worker(tmp_path)
    app, table = worker.app, worker.calls_by_id
    recovery = app.tables.recovery
    tp = TP(table.changelog_topic.get_topic_name(), 3)
    other = TP(tp.topic, 5)  # a partition of the same changelog that is not ours

    async def replay() -> None:
        queue = app.tables.changelog_queue
        app.flow_control.resume()  # as Faust's recovery does before it reads the changelogs
        recovery.active_tps.add(tp)
        recovery.tp_to_table[tp] = table
        recovery.active_offsets[tp] = -1
        # Records 0..2499: call-N keeps its last value; every fifth call deleted (a tombstone)
        # after its last write; one record delivered twice (after a re-fetch) is applied once.
        events = []
        for offset in range(2500):
            n = offset % 500
            value = None if (n % 5 == 0 and offset >= 2000) else f"v{offset}".encode()
            events.append(_event(app, tp, offset, f"call-{n}".encode(), value))
        events.insert(1200, _event(app, tp, 700, b"call-200", b"stale"))
        events.insert(10, _event(app, other, 0, b"call-x", b"not ours"))
        recovery.active_highwaters[tp] = 2499
        recovery.in_recovery = True
        loop = asyncio.create_task(type(recovery)._slurp_changelogs(recovery))
        try:
            for event in events:
                await queue.put(event)  # the queue is bounded: the loop drains as it fills
            await asyncio.wait_for(recovery.signal_recovery_end.wait(), timeout=10)
        finally:
            loop.cancel()

    app.loop.run_until_complete(replay())  # the loop the app's queues and events belong to
    expected = {f"call-{n}".encode(): f"v{2000 + n}".encode() for n in range(500) if n % 5}
    assert dict(table.data.data) == expected
    assert recovery.active_offsets[tp] == 2499
    assert not recovery.in_recovery and not recovery.need_recovery()
