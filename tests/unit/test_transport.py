"""The worker's transport: the hand-off (inline when the callback does not wait, Faust's race when
it does, quiet when a rebalance cancels it: a Faust bug ended the fetch loop), batched delivery and
its acknowledgements, and commits that never pass an unacknowledged message."""

from __future__ import annotations

import asyncio

import mode
import pytest

from streams.faust_fence.handoff import abandonable, hand_off

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


def _consumer_with(committed: int, acked: list[int]):
    import faust
    from faust.types import TP

    app = faust.App(f"transport-test-{committed}", broker="callstream://127.0.0.1:1")
    consumer = app.consumer
    tp = TP("call-events", 0)
    app.topics._acking_topics.add(tp.topic)  # as when an agent subscribes to it
    consumer._committed_offset[tp] = committed
    consumer._acked[tp] = list(acked)
    consumer._acked_index[tp] = set(acked)
    return consumer, tp


def test_faust_commits_past_one_unacknowledged_message_at_the_committed_offset():
    from faust.transport.drivers.aiokafka import Consumer as FaustConsumer

    consumer, tp = _consumer_with(37, [38, 39])
    # Offset 37 was never processed, yet Faust would commit 40: 37 is lost for the next owner.
    assert FaustConsumer._new_offset(consumer, tp) == 40


def test_the_commit_waits_for_the_message_at_the_committed_offset():
    from streams.faust_fence.transport import Consumer

    consumer, tp = _consumer_with(37, [38, 39])
    assert isinstance(consumer, Consumer)
    assert consumer._new_offset(tp) is None
    assert consumer._acked[tp] == [38, 39]  # kept: committed once 37 is acknowledged too
    consumer._acked[tp].append(37)
    consumer._acked_index[tp].add(37)
    assert consumer._new_offset(tp) == 40


def _records(topic: str, partition: int, offsets: range) -> list:
    from aiokafka.structs import ConsumerRecord

    return [ConsumerRecord(topic, partition, offset, 1_700_000_000_000 + offset, 0, f"k{offset}".encode(),
                           f"v{offset}".encode(), None, 2, 2, ()) for offset in offsets]


def test_a_batch_acknowledges_every_offset_it_covers():
    consumer, tp = _consumer_with(37, [])
    consumer.batched_topics = frozenset({tp.topic})
    message = consumer._batch_message(tp, _records(tp.topic, 0, range(37, 42)), 0)
    assert (message.offset, [r.offset for r in message.value]) == (41, [37, 38, 39, 40, 41])
    message.incref()
    assert message.ack(consumer)
    assert consumer._new_offset(tp) == 42


def test_a_batch_read_again_acknowledges_only_from_the_committed_offset():
    consumer, tp = _consumer_with(39, [])
    consumer.batched_topics = frozenset({tp.topic})
    message = consumer._batch_message(tp, _records(tp.topic, 0, range(37, 42)), 0)
    message.incref()
    message.ack(consumer)
    assert sorted(consumer._acked[tp]) == [39, 40, 41]
    assert consumer._new_offset(tp) == 42


def _fetching(consumer, fetched: dict, *, during_fetch=None):
    """Make ``consumer`` fetch ``fetched`` without a broker; ``during_fetch`` runs while it waits."""
    async def next_records(timeout):
        if during_fetch is not None:
            await during_fetch()
        return fetched, None

    consumer._wait_next_records = next_records
    consumer.resume_flow()
    consumer.highwater = lambda tp: 10


def _delivered(consumer) -> list:
    async def main():
        return [(tp, message, first) async for tp, message, first, _, _ in consumer._deliveries(1.0)]
    return asyncio.run(main())


def test_a_fetch_reaches_the_streams_a_partition_at_a_time_for_batched_topics_only():
    from faust.types import TP

    consumer, events = _consumer_with(0, [])
    changelog = TP("worker-calls_by_id-changelog", 0)
    consumer.batched_topics = frozenset({events.topic})
    _fetching(consumer, {events: _records(events.topic, 0, range(5, 10)),
                         changelog: _records(changelog.topic, 0, range(0, 3))})
    consumer._next_offset[events] = 7  # 5 and 6 were delivered before: not again
    delivered = _delivered(consumer)
    assert [(tp, message.offset, first) for tp, message, first in delivered] == [
        (events, 9, 7), (changelog, 0, 0), (changelog, 1, 1), (changelog, 2, 2)]
    assert [r.offset for r in delivered[0][1].value] == [7, 8, 9]
    assert delivered[1][1].value == b"v0"  # a changelog record stays a message of its own


def _drain_once(consumer, fetched: dict, on_message) -> None:
    """Run the fetch loop over one fetch; ``on_message`` is the streams' side of the hand-off."""
    class Fetcher:
        _stopped = asyncio.Event()

    async def next_records(timeout):
        if Fetcher._stopped.is_set():
            return {}, None
        Fetcher._stopped.set()  # one fetch, then the loop ends
        return fetched, None

    async def callback(message):
        await on_message(message)

    consumer._wait_next_records = next_records
    consumer.callback = callback
    consumer.resume_flow()
    consumer.highwater = lambda tp: 100
    asyncio.run(consumer._drain_messages(Fetcher()))


def test_records_ahead_of_where_a_seek_put_the_partition_are_read_again_not_delivered():
    # A fetch made before the seek that ends a rebalance, delivered after it: Faust's loop
    # handed such records over and then dropped the re-read ones before them for good.
    consumer, events = _consumer_with(0, [])
    consumer.batched_topics = frozenset({events.topic})
    consumer._next_offset[events] = 5  # where the seek to the committed offset put it
    sought, handed = [], []

    async def fake_seek_wait(partitions):
        sought.extend(partitions.items())

    async def on_message(message):
        handed.append(message)

    consumer._thread.seek_wait = fake_seek_wait
    _drain_once(consumer, {events: _records(events.topic, 0, range(8, 10))}, on_message)
    assert handed == [] and sought == [(events, 5)] and consumer._next_offset[events] == 5


def test_a_seek_during_a_hand_off_decides_where_reading_goes_on():
    consumer, events = _consumer_with(0, [])
    consumer.batched_topics = frozenset({events.topic})
    consumer._next_offset[events] = 5

    async def rebalanced_meanwhile(message):
        await consumer.seek_wait({events: 3})  # as recovery or a rebalance would

    async def fake_seek_wait(partitions):
        pass

    consumer._thread.seek_wait = fake_seek_wait
    _drain_once(consumer, {events: _records(events.topic, 0, range(5, 10))}, rebalanced_meanwhile)
    assert consumer._next_offset[events] == 3  # not 10: offsets 3..9 are read again


def test_a_jump_on_an_input_topic_is_read_again_once_then_counts_as_acknowledged():
    consumer, events = _consumer_with(37, [])
    consumer.batched_topics = frozenset({events.topic})
    sought = []

    async def fake_seek_wait(partitions):
        sought.extend(partitions.items())

    consumer._thread.seek_wait = fake_seek_wait

    async def main():
        first = await consumer._on_gap(events, events.topic, 37, 40)
        again = await consumer._on_gap(events, events.topic, 37, 40)
        return first, again

    assert asyncio.run(main()) == (True, False)
    assert sought == [(events, 37)] and consumer._next_offset[events] == 37
    # The jump that stayed: 37..39 count as acknowledged, 40 only once acknowledged itself.
    assert consumer._new_offset(events) == 40
    consumer._committed_offset[events] = 40
    assert consumer._new_offset(events) is None
    consumer._acked[events].append(40)
    consumer._acked_index[events].add(40)
    assert consumer._new_offset(events) == 41


def test_a_jump_the_consumer_stepped_over_itself_counts_as_acknowledged_without_a_read_again():
    # Transaction markers and aborted transactions: the fetch started at the expected
    # offset (37), its first record is 40. Nothing was skipped by us: no seek, no warning.
    from streams.faust_fence.fetch import Fetch

    consumer, events = _consumer_with(37, [])
    consumer.batched_topics = frozenset({events.topic})
    consumer._next_offset[events] = 37
    sought, handed = [], []

    async def fake_seek_wait(partitions):
        sought.extend(partitions.items())

    async def on_message(message):
        handed.append(message)
        message.incref()
        message.ack(consumer)

    consumer._thread.seek_wait = fake_seek_wait
    _drain_once(consumer, Fetch({events: _records(events.topic, 0, range(40, 43))}, {events: 37}),
                on_message)
    assert [m.offset for m in handed] == [42] and sought == []
    assert consumer._next_offset[events] == 43
    assert consumer._new_offset(events) == 43  # 37..39 acknowledged with the batch


def test_a_jump_past_records_fetched_before_and_not_delivered_is_read_again():
    from streams.faust_fence.fetch import Fetch

    consumer, events = _consumer_with(0, [])
    consumer.batched_topics = frozenset({events.topic})
    consumer._next_offset[events] = 5
    sought, handed = [], []

    async def fake_seek_wait(partitions):
        sought.extend(partitions.items())

    async def on_message(message):
        handed.append(message)

    consumer._thread.seek_wait = fake_seek_wait
    # The consumer's position was 8 when the fetch began: 5..7 were drained by an earlier fetch.
    _drain_once(consumer, Fetch({events: _records(events.topic, 0, range(8, 10))}, {events: 8}),
                on_message)
    assert handed == [] and sought == [(events, 5)]


def test_records_of_one_fetch_delivered_one_by_one_step_over_what_lies_between_them():
    from faust.types import TP

    from streams.faust_fence.fetch import Fetch

    consumer, _ = _consumer_with(0, [])
    changelog = TP("worker-calls_by_id-changelog", 0)
    records = _records(changelog.topic, 0, range(0, 2)) + _records(changelog.topic, 0, range(5, 6))
    _fetching(consumer, Fetch({changelog: records}, {changelog: 0}, {changelog: 8}))

    async def main():
        return [(m.offset, start, end) async for _, m, _, start, end in consumer._deliveries(1.0)]

    assert asyncio.run(main()) == [(0, 0, None), (1, 1, None), (5, 2, 8)]


def test_offsets_stepped_over_after_a_fetch_s_last_record_count_as_acknowledged():
    # A transaction's commit marker after the last record: the next fetch starts past it.
    from streams.faust_fence.fetch import Fetch

    consumer, events = _consumer_with(37, [])
    consumer.batched_topics = frozenset({events.topic})
    consumer._next_offset[events] = 37
    sought = []

    async def fake_seek_wait(partitions):
        sought.extend(partitions.items())

    async def on_message(message):
        message.incref()
        message.ack(consumer)

    consumer._thread.seek_wait = fake_seek_wait
    _drain_once(consumer, Fetch({events: _records(events.topic, 0, range(37, 40))}, {events: 37},
                                {events: 41}), on_message)
    assert consumer._next_offset[events] == 41 and sought == []
    assert consumer._new_offset(events) == 41  # the marker too (Faust: only with a later record)
    consumer._committed_offset[events] = 41
    _drain_once(consumer, Fetch({events: _records(events.topic, 0, range(41, 43))}, {events: 41}),
                on_message)
    assert sought == [] and consumer._new_offset(events) == 43


def test_a_gap_at_the_committed_offset_counts_as_acknowledged():
    from faust.transport.consumer import Consumer as FaustConsumer

    consumer, tp = _consumer_with(164, [165, 166])
    asyncio.run(FaustConsumer._add_gap(consumer, tp, 164, 164))
    assert not consumer._gap[tp]  # Faust dropped it: the commit would wait for 164 for good
    asyncio.run(consumer._add_gap(tp, 164, 164))
    assert consumer._new_offset(tp) == 167


def test_a_gap_elsewhere_does_not_let_the_commit_pass_an_unacknowledged_message():
    consumer, tp = _consumer_with(37, [38, 40])
    asyncio.run(consumer._add_gap(tp, 39, 39))
    assert consumer._new_offset(tp) is None  # 37 was never processed
    consumer._acked[tp].append(37)
    consumer._acked_index[tp].add(37)
    assert consumer._new_offset(tp) == 41


def test_a_fetch_that_moved_on_without_a_record_counts_those_offsets_as_acknowledged():
    # A whole aborted transaction and its marker (37..41): aiokafka returns no record
    # for the partition but its position moved on; the next record (42) is no jump.
    from streams.faust_fence.fetch import Fetch

    consumer, events = _consumer_with(37, [])
    consumer.batched_topics = frozenset({events.topic})
    consumer._next_offset[events] = 37
    sought, handed = [], []

    async def fake_seek_wait(partitions):
        sought.extend(partitions.items())

    async def on_message(message):
        handed.append(message)
        message.incref()
        message.ack(consumer)

    consumer._thread.seek_wait = fake_seek_wait
    _drain_once(consumer, Fetch({}, {events: 37}, {events: 42}), on_message)
    assert consumer._next_offset[events] == 42 and handed == []
    _drain_once(consumer, Fetch({events: _records(events.topic, 0, range(42, 44))}, {events: 42}),
                on_message)
    assert sought == [] and [m.offset for m in handed] == [43]
    assert consumer._new_offset(events) == 44


def test_a_partition_that_ends_with_offsets_without_a_record_is_committed_to_its_end():
    # Everything up to 39 committed, then a commit marker at 40 and nothing else yet.
    consumer, tp = _consumer_with(40, [])
    asyncio.run(consumer._add_gap(tp, 40, 40))
    assert consumer._new_offset(tp) == 41
    # A gap ahead of a hole does not pass the hole.
    consumer, tp = _consumer_with(40, [])
    asyncio.run(consumer._add_gap(tp, 42, 43))
    assert consumer._new_offset(tp) is None


def test_a_partition_with_no_record_since_its_assignment_is_committed_past_offsets_without_one():
    # Assigned again after a rebalance at 242 (Faust dropped it from its acknowledgements),
    # and the rest of the partition is an aborted transaction and its marker (242..247).
    consumer, tp = _consumer_with(242, [])
    del consumer._acked[tp], consumer._acked_index[tp]
    assert tp not in set(consumer._filter_tps_with_pending_acks())
    asyncio.run(consumer._add_gap(tp, 242, 247))
    assert tp in set(consumer._filter_tps_with_pending_acks())
    assert consumer._filter_committable_offsets([tp]) == {tp: 248}


def test_a_partition_never_committed_whose_start_holds_no_record_is_committed_past_it():
    consumer, tp = _consumer_with(None, [])
    asyncio.run(consumer._add_gap(tp, 0, 5))
    assert consumer._new_offset(tp) == 6
