"""Faust's aiokafka transport, delivering the worker's input topics a fetch at a time.

Faust turns every fetched record into a ``Message`` and an ``Event``, hands each
to the streams through its conductor (a lock, flow-control and producer-ebb
waits, a queue hand-off), tracks and acknowledges each: profiled on the worker,
that machinery cost more CPU than validating, folding and rating the events
(a bare counting Faust agent: ~33,000 records per CPU-second; a plain consumer
that decodes JSON: ~390,000). For the topics in
:attr:`Consumer.batched_topics` this consumer hands the records of one
partition from one fetch to the streams as **one** message, whose value is the
list of aiokafka records and whose offset is the last one's; acknowledging it
acknowledges every offset it covers. Faust's machinery then runs once per
fetch and partition instead of once per record, and everything Faust does with
messages — rebalances, flow control, commits of acknowledged offsets, its
generation checks — works unchanged. Other topics (the tables' changelogs,
read by recovery) keep one message per record.

Faust bugs that lost events, fixed on the way (the fetch loop is ours, a copy
of Faust's with the batching):
- Faust's loop went on delivering a fetch made before a seek — the seek to the
  committed offsets that ends every rebalance included — so records *ahead*
  of where the seek put a partition reached the streams, the ones re-read
  from the seek's position were then dropped as "read before", and the jump
  between counted as acknowledged. Here every partition knows the offset its
  next delivery must start at (set by each seek; a hand-off during which the
  partition was sought does not move it), a delivery that starts earlier is
  trimmed, and one that starts later on an input topic (never compacted nor
  transactional) is not delivered: the partition is read again from there;
- a jump that stays (compaction, transaction markers, aborted records) counted
  as acknowledged together with the record after it, before that record was
  processed; here only the missing offsets count. A jump is told from records
  fetched and not delivered by where the fetch started
  (:class:`~streams.faust_fence.fetch.Fetch`): one that started at or before the expected
  offset skipped nothing of ours;
- the commit of a partition skipped one unacknowledged message sitting exactly
  at the committed offset (the check for a hole at the head of the
  acknowledged offsets is off by one), and offsets without a record right at
  the committed offset or after the last acknowledged one were never
  committed: :mod:`streams.faust_fence.commits`.

The consumer reads committed data only (``isolation_level=read_committed``,
set by :mod:`streams.faust_fence.fetch`, which also says where each fetch started and
ended).

The hand-off itself is :mod:`streams.faust_fence.handoff`. Registered as the
``callstream://`` transport (entry point ``faust.transports``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as driver
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams.faust_fence.commits import ExactCommits
from streams.faust_fence.fetch import ConsumerThread
from streams.faust_fence.handoff import abandonable, hand_off

_EVENT_WAIT = asyncio.Event.wait.__code__

log = logging.getLogger("callstream.worker")


class Consumer(ExactCommits, driver.Consumer):
    """The aiokafka consumer: batched delivery, exact commits, cheap hand-offs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Topics whose records reach the streams a fetch and partition at a time.
        self.batched_topics: frozenset[str] = frozenset()
        self._holes: dict[TP, tuple[int, int]] = {}  # tp -> the unacknowledged range last logged
        # tp -> the offset the next delivery must start at (unknown after a seek without one)
        self._next_offset: dict[TP, int] = {}
        self._sought: defaultdict[TP, int] = defaultdict(int)  # tp -> seeks so far
        self._refetched: set[tuple[TP, int, int]] = set()  # gaps already read again once

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    # ------------------------------------------------------------ delivery

    async def _drain_messages(self, fetcher: Any) -> None:  # noqa: C901 - Faust's loop, kept whole
        """Faust's fetch loop (``Consumer._drain_messages``), delivering batches where asked."""
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        next_offset, sought = self._next_offset, self._sought
        commit_every = self._commit_every
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                deliveries = self._deliveries(timeout=1.0)
                await asyncio.sleep(0)
                if self.should_stop:
                    continue
                async for tp, message, first, start, end in deliveries:
                    expected = next_offset.get(tp)
                    if expected is not None and first > expected:
                        if start is not None and start <= expected:
                            await self._skipped(tp, message.topic, expected, first)
                        elif await self._on_gap(tp, message.topic, expected, first):
                            continue  # the partition is read again from ``expected``
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    seeks = sought[tp]
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                    if sought[tp] == seeks:  # else a seek meanwhile decided where reading goes on
                        next_offset[tp] = message.offset + 1
                        self._read_offset[tp] = message.offset
                        if end is not None and end > message.offset + 1:  # markers after the last record
                            await self._skipped(tp, message.topic, message.offset + 1, end)
                            next_offset[tp] = end
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception:
            log.exception("Drain messages raised")
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliveries(self, timeout: float) -> AsyncIterator[tuple]:
        """Faust's ``getmany`` over one fetch, minus records delivered before: (tp, message, its
        first offset, where the partition's read started, where it ended — with its last message)."""
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            # What Faust does with a fetch that lands while the flow is off.
            try:
                await self.perform_seek()
            except Exception as exc:  # Faust logs and goes on here too (its Consumer._drain_messages)
                log.warning("exception performing seek when flow not active %r", exc)
            return
        next_offset = self._next_offset
        starts, ends = getattr(records, "starts", {}), getattr(records, "ends", {})
        await self._stepped_over(records, starts, ends)
        for tp, tp_records in records.items():
            if not self.flow_active or self.app.consumer_generation_id != generation_id:
                return
            if active_partitions is not None and tp not in active_partitions \
                    and tp not in self._buffered_partitions:
                continue  # paused since the fetch: read again from where it stopped (a gap)
            expected = next_offset.get(tp)
            if expected is not None and tp_records[0].offset < expected:
                tp_records = [r for r in tp_records if r.offset >= expected]  # delivered before
                if not tp_records:
                    continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            start, end, last = starts.get(tp), ends.get(tp), tp_records[-1]
            if tp.topic in self.batched_topics:
                yield tp, self._batch_message(tp, tp_records, generation_id), tp_records[0].offset, start, end
                continue
            for record in tp_records:
                if not self.flow_active or self.app.consumer_generation_id != generation_id:
                    return
                yield tp, self._to_message(tp, record), record.offset, start, end if record is last else None
                start = record.offset + 1  # one fetch: nothing between two of its records is ours

    async def _stepped_over(self, records: dict, starts: dict, ends: dict) -> None:
        """Partitions whose read moved on without a record (an aborted transaction, markers)."""
        for tp, end in ends.items():
            start, expected = starts.get(tp), self._next_offset.get(tp)
            if tp not in records and start is not None and expected is not None \
                    and start <= expected < end:
                await self._skipped(tp, tp.topic, expected, end)
                self._next_offset[tp] = end

    async def _skipped(self, tp: TP, topic: str, expected: int, first: int) -> None:
        """Offsets ``expected``..``first - 1`` hold no record for us: they count as acknowledged.

        The fetch began at or before ``expected``, so the consumer stepped over
        them itself: transaction markers, aborted transactions (the consumer
        reads committed data only), compacted-away records.
        """
        if self.app.topics.acks_enabled_for(topic):
            await self._add_gap(tp, expected, first - 1)

    async def _on_gap(self, tp: TP, topic: str, expected: int, first: int) -> bool:
        """Offsets ``expected``..``first - 1`` were skipped by a fetch that began after them;
        True when they are read again.

        Such a jump means records were fetched and not delivered — Faust's loop
        went on delivering a fetch made before the seek that ends every
        rebalance, past the records the streams had skipped while the flow was
        off (seen after a broker restart: ten records of a partition, whose
        offsets then counted as acknowledged) — so they are read again, once.
        A gap that stays is real (compaction, transaction markers) and counts
        as acknowledged, as in Faust — which counted the record after the gap
        too, before it was processed.
        """
        if topic in self.batched_topics and (tp, expected, first) not in self._refetched:
            self._refetched.add((tp, expected, first))
            log.warning(f"{tp.topic}:{tp.partition}: offsets %d..%d were fetched but not "
                        "delivered; reading them again", expected, first - 1)
            await self.seek_wait({tp: expected})  # in the consumer's thread, like Faust's recovery
            return True
        if self.app.topics.acks_enabled_for(topic):
            log.warning(f"{tp.topic}:{tp.partition}: offsets %d..%d are missing from the log; "
                        "counted as acknowledged", expected, first - 1)
            await self._add_gap(tp, expected, first - 1)
        return False

    # ------------------------------------------------------------ seeks

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._sought[tp] += 1
            self._next_offset.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        self._sought[partition] += 1
        self._next_offset[partition] = offset

    async def seek_wait(self, partitions: Any) -> None:
        await super().seek_wait(partitions)
        for tp, offset in partitions.items():
            self._sought[tp] += 1
            if offset > 0:
                self._next_offset[tp] = offset
            else:
                self._next_offset.pop(tp, None)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        committed = self._committed_offset
        for tp in self.assignment():
            self._sought[tp] += 1
            if committed.get(tp):
                self._next_offset[tp] = committed[tp]
            else:
                self._next_offset.pop(tp, None)
        log.info("streams resume from committed offsets %s",
                 {f"{tp.topic}:{tp.partition}": offset for tp, offset in sorted(committed.items())})

    def _batch_message(self, tp: TP, records: list, generation_id: int) -> ConsumerMessage:
        last = records[-1]
        timestamp = last.timestamp / 1000.0 if last.timestamp is not None else None
        return ConsumerMessage(tp.topic, tp.partition, last.offset, timestamp, last.timestamp_type,
                               None, None, records, None, 0, 0, tp, generation_id=generation_id)

    # ------------------------------------------------------------ hand-off

    async def wait_first(self, *coros: Coroutine, timeout: Any = None) -> Any:
        if len(coros) == 2 and timeout is None and self._is_suspend_wait(coros[1]):
            if self.suspend_flow.is_set():
                return await abandonable(super().wait_first(*coros))
            return await abandonable(hand_off(coros[0], coros[1], super().wait_first))
        return await super().wait_first(*coros, timeout=timeout)

    def _is_suspend_wait(self, coro: Any) -> bool:
        code = getattr(coro, "cr_code", None)
        frame = getattr(coro, "cr_frame", None)
        return code is _EVENT_WAIT and frame is not None and frame.f_locals.get("self") is self.suspend_flow


class Transport(driver.Transport):
    """aiokafka transport using :class:`Consumer`."""

    Consumer = Consumer
