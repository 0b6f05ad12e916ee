"""The Kafka readers of notify: the alerts topic (with resume, warm-up and watermarks) and the actions topic."""

from __future__ import annotations

import logging
import time
from itertools import groupby
from operator import itemgetter

from common.config import Settings
from common.kafka_clients import consumer_options, librdkafka_options
from notify.actions import Actions

_LOG = logging.getLogger("callstream.notify")
CAUGHT_UP_GRACE_MS = 2_000  # an alert produced now reaches notify within this (else: a late alert)


def _consumer(settings: Settings, **options):
    from kafka import KafkaConsumer

    return KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                         fetch_max_wait_ms=50, **options, **consumer_options(settings))


_PARTITION, _TIMESTAMP = itemgetter(0), itemgetter(2)  # of a record (partition, offset, message time, value)


class AlertReader:
    """Reads every partition of the alerts topic in log order, from each cursor (minus a warm-up).

    librdkafka (confluent-kafka) rather than kafka-python: it decodes record batches in C and
    prefetches while notify decides, which made the decoding a fraction of what it cost in Python
    (a quarter of a catch-up's time). The prefetch is bounded, so RSS does not grow with the backlog:
    librdkafka stops fetching while its queue (all partitions: the queues of assigned partitions
    feed one) holds ``PREFETCH_MESSAGES`` messages or ``PREFETCH_KBYTES``, and a fetch in flight
    brings at most ``FETCH_BYTES`` (``PARTITION_FETCH_BYTES`` of each partition). A fetched response
    stays whole in memory until its last message is taken, so the most it holds is about the queue's
    bound plus one response: ~12 MiB (it was ~24 MiB: 8 partitions × 2 MiB in flight, librdkafka's own
    ``fetch.max.bytes`` being 50 MB). A poll takes at most 10,000 messages, so the queue still holds
    more than the next poll wants.
    """

    PREFETCH_KBYTES = 8 * 1024  # queued.max.messages.kbytes (librdkafka's default: 64 MiB)
    PREFETCH_MESSAGES = 20_000  # queued.min.messages (default 100,000)
    FETCH_BYTES = 4 * 1024 * 1024  # fetch.max.bytes, one fetch response (default 50 MB)
    PARTITION_FETCH_BYTES = 1024 * 1024  # max.partition.fetch.bytes, per partition in it (default 1 MiB)

    def __init__(self, settings: Settings, cursors: dict[int, tuple[int, int]], warm_up_s: float,
                 *, wait_s: float = 60.0) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.topic = settings.topic_alerts
        self._consumer = Consumer({
            # assign() only: the group is never joined and nothing is committed (the ledger keeps the cursors).
            **librdkafka_options(settings), "group.id": "callstream-notify",
            "enable.auto.commit": False, "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 50, "fetch.max.bytes": self.FETCH_BYTES,
            "max.partition.fetch.bytes": self.PARTITION_FETCH_BYTES,
            "queued.max.messages.kbytes": self.PREFETCH_KBYTES, "queued.min.messages": self.PREFETCH_MESSAGES,
            "logger": _LOG,
        })
        deadline = time.monotonic() + wait_s
        partitions = self._partitions()
        while not partitions:  # the topic may be created moments after notify starts
            if time.monotonic() > deadline:
                raise RuntimeError(f"the alerts topic {self.topic} does not exist")
            time.sleep(0.5)
            partitions = self._partitions()
        self.tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.resume: dict[int, int] = {}
        self.watermarks: dict[int, int] = {p: 0 for p in partitions}
        self._next: dict[int, int] = {}  # partition -> the next offset to read (as far as notify knows)
        self._high: dict[int, int] = {}  # partition -> its end (last stable offset) at the last look
        self._paused = False
        starts = []
        for tp in self.tps:
            cursor = cursors.get(tp.partition)
            if cursor is None:
                self.resume[tp.partition] = 0
                start = self._query(tp)[0]
            else:
                self.resume[tp.partition] = cursor[0]
                start = self._warm_start(tp, cursor, warm_up_s)
            self._next[tp.partition] = start
            starts.append(TopicPartition(self.topic, tp.partition, start))
        self._consumer.assign(starts)

    def _partitions(self) -> list[int]:
        metadata = self._consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if metadata is None or metadata.error is not None:
            return []
        return list(metadata.partitions)

    def _query(self, tp) -> tuple[int, int]:
        """(first offset, end offset) of a partition, asked of the broker."""
        low, high = self._consumer.get_watermark_offsets(tp, timeout=30, cached=False)
        return max(0, low), max(0, high)

    def _warm_start(self, tp, cursor: tuple[int, int], warm_up_s: float) -> int:
        """Where to start reading so that min-hits windows see the alerts before the cursor."""
        from confluent_kafka import TopicPartition

        offset, ts = cursor
        if warm_up_s <= 0 or ts <= 0:
            return offset
        asked = TopicPartition(self.topic, tp.partition, max(0, int(ts - warm_up_s * 1000)))
        found = self._consumer.offsets_for_times([asked], timeout=30)[0].offset
        return min(offset, found) if found >= 0 else offset

    def end_offsets(self) -> dict[int, int]:
        """The current end offset of every partition."""
        return {tp.partition: self._query(tp)[1] for tp in self.tps}

    def poll(self, timeout_ms: int, max_records: int = 10_000) -> list[tuple[int, int, int, bytes | None]]:
        """A fetch's records, (partition, offset, message time, value) each: each partition's in log order
        (partitions one after another)."""
        # What is already prefetched, at once; else wait for the first message only (consume() with a
        # timeout waits to fill the whole batch: 100 ms more latency for each alert at a trickle).
        messages = self._consumer.consume(max_records, 0)
        if not messages:
            first = self._consumer.poll(timeout_ms / 1000)
            if first is None:
                return []
            messages = [first, *self._consumer.consume(max_records - 1, 0)]
        if any(message.error() is not None for message in messages):  # a transport error, rare
            for message in messages:
                if message.error() is not None:  # reported by librdkafka, which retries itself
                    _LOG.warning("notify: reading %s: %s", self.topic, message.error())
            messages = [message for message in messages if message.error() is None]
        # Plain tuples in one comprehension (a catch-up takes tens of thousands a second), then sorted:
        # stable, so each partition's records stay in log order.
        records = sorted([(m.partition(), m.offset(), m.timestamp()[1], m.value()) for m in messages],
                         key=_PARTITION)
        watermarks, next_ = self.watermarks, self._next
        for partition, run in groupby(records, _PARTITION):
            run = list(run)
            next_[partition] = run[-1][1] + 1
            newest = max(map(_TIMESTAMP, run))
            if newest > watermarks[partition]:
                watermarks[partition] = newest
        return records

    def _end(self, tp) -> int | None:
        """The partition's end as of its last fetch (None before one)."""
        high = self._consumer.get_watermark_offsets(tp, cached=True)[1]
        if high >= 0:
            self._high[tp.partition] = high
        return self._high.get(tp.partition)

    def _position(self, tp) -> int:
        """The next offset to read, past control records (librdkafka's position, when it has one)."""
        known = self._next[tp.partition]
        position = self._consumer.position([tp])[0].offset
        return max(known, position)

    def refresh_watermarks(self, now_ms: int) -> dict[int, int]:
        """Each partition's watermark: the newest message time read, or now (less a grace) once caught up."""
        for tp in self.tps:
            high = self._end(tp)
            if high is not None and self._position(tp) >= high:
                self.watermarks[tp.partition] = max(self.watermarks[tp.partition], now_ms - CAUGHT_UP_GRACE_MS)
        return self.watermarks

    def lag(self) -> int | None:
        """Alerts not yet read (from the last fetch's high watermarks); None before every partition was fetched."""
        total = 0
        for tp in self.tps:
            high = self._end(tp)
            if high is None:
                return None
            total += max(0, high - self._position(tp))
        return total

    def unsettled(self, cursors: dict[int, int]) -> int | None:
        """Alerts between each partition's cursor and its end: read or not, not yet settled (None: unknown)."""
        total = 0
        for tp in self.tps:
            high = self._end(tp)
            if high is None:
                return None
            total += max(0, high - cursors.get(tp.partition, self.resume.get(tp.partition, 0)))
        return total

    def pause(self, paused: bool) -> None:
        """Stop (or resume) fetching alerts, e.g. while a slow channel's queue is full."""
        if paused == self._paused:  # librdkafka drops its prefetch on a pause: only on a change
            return
        self._paused = paused
        if paused:
            self._consumer.pause(self.tps)
        else:
            self._consumer.resume(self.tps)

    def close(self) -> None:
        self._consumer.close()


class ActionsReader:
    """Follows the actions topic (acknowledgements, silences) into an :class:`Actions`."""

    def __init__(self, settings: Settings, topic: str, actions: Actions) -> None:
        from kafka import TopicPartition

        self.actions = actions
        self._consumer = _consumer(settings)
        partitions = self._consumer.partitions_for_topic(topic) or {0}
        self._tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._tps)
        self._consumer.seek_to_beginning(*self._tps)

    def catch_up(self, timeout_s: float = 30.0) -> None:
        """Read to the current end (notify's start: decide nothing before the silences are known)."""
        ends = self._consumer.end_offsets(self._tps)
        deadline = time.monotonic() + timeout_s
        while any(self._consumer.position(tp) < ends[tp] for tp in self._tps):
            if time.monotonic() > deadline:
                raise RuntimeError("the actions topic was not read within the time limit")
            self.poll(500)

    def poll(self, timeout_ms: int = 0) -> int:
        """Fold in what arrived; the number of actions read."""
        count = 0
        for records in self._consumer.poll(timeout_ms=timeout_ms, max_records=1000).values():
            for record in records:
                self.actions.apply(record.value)
                count += 1
        return count

    def close(self) -> None:
        self._consumer.close()
