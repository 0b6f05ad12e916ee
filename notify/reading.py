"""The Kafka readers of notify: the alerts topic (with resume, warm-up and watermarks) and the actions topic."""

from __future__ import annotations

import time
from collections.abc import Iterator

from common.config import Settings
from common.kafka_clients import consumer_options
from notify.actions import Actions

CAUGHT_UP_GRACE_MS = 2_000  # an alert produced now reaches notify within this (else: a late alert)


def _consumer(settings: Settings, **options):
    from kafka import KafkaConsumer

    return KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                         fetch_max_wait_ms=50, **options, **consumer_options(settings))


class AlertReader:
    """Reads every partition of the alerts topic in log order, from each cursor (minus a warm-up)."""

    def __init__(self, settings: Settings, cursors: dict[int, tuple[int, int]], warm_up_s: float,
                 *, wait_s: float = 60.0) -> None:
        from kafka import TopicPartition

        self.topic = settings.topic_alerts
        self._consumer = _consumer(settings, max_partition_fetch_bytes=2 * 1024 * 1024)
        deadline = time.monotonic() + wait_s
        partitions = self._consumer.partitions_for_topic(self.topic)
        while not partitions:  # the topic may be created moments after notify starts
            if time.monotonic() > deadline:
                raise RuntimeError(f"the alerts topic {self.topic} does not exist")
            time.sleep(0.5)
            partitions = self._consumer.partitions_for_topic(self.topic)
        self.tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(self.tps)
        self.resume: dict[int, int] = {}
        self.watermarks: dict[int, int] = {p: 0 for p in partitions}
        for tp in self.tps:
            cursor = cursors.get(tp.partition)
            if cursor is None:
                self._consumer.seek_to_beginning(tp)
                self.resume[tp.partition] = 0
                continue
            self.resume[tp.partition] = cursor[0]
            self._consumer.seek(tp, self._warm_start(tp, cursor, warm_up_s))

    def _warm_start(self, tp, cursor: tuple[int, int], warm_up_s: float) -> int:
        """Where to start reading so that min-hits windows see the alerts before the cursor."""
        offset, ts = cursor
        if warm_up_s <= 0 or ts <= 0:
            return offset
        found = self._consumer.offsets_for_times({tp: max(0, int(ts - warm_up_s * 1000))}).get(tp)
        return min(offset, found.offset) if found is not None else offset

    def end_offsets(self) -> dict[int, int]:
        """The current end offset of every partition."""
        return {tp.partition: off for tp, off in self._consumer.end_offsets(self.tps).items()}

    def poll(self, timeout_ms: int, max_records: int = 5000) -> Iterator:
        """Records in partition order (each partition's in log order)."""
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        for tp in sorted(batches, key=lambda t: t.partition):
            records = batches[tp]
            if records:
                newest = max(r.timestamp for r in records)
                self.watermarks[tp.partition] = max(self.watermarks[tp.partition], newest)
            yield from records

    def refresh_watermarks(self, now_ms: int) -> dict[int, int]:
        """Each partition's watermark: the newest message time read, or now (less a grace) once caught up."""
        for tp in self.tps:
            high = self._consumer.highwater(tp)
            if high is not None and self._consumer.position(tp) >= high:
                self.watermarks[tp.partition] = max(self.watermarks[tp.partition], now_ms - CAUGHT_UP_GRACE_MS)
        return self.watermarks

    def lag(self) -> int | None:
        """Alerts not yet read (from the last fetch's high watermarks); None before every partition was fetched."""
        total = 0
        for tp in self.tps:
            high = self._consumer.highwater(tp)
            if high is None:
                return None
            total += max(0, high - self._consumer.position(tp))
        return total

    def unsettled(self, cursors: dict[int, int]) -> int | None:
        """Alerts between each partition's cursor and its end: read or not, not yet settled (None: unknown)."""
        total = 0
        for tp in self.tps:
            high = self._consumer.highwater(tp)
            if high is None:
                return None
            total += max(0, high - cursors.get(tp.partition, self.resume.get(tp.partition, 0)))
        return total

    def pause(self, paused: bool) -> None:
        """Stop (or resume) fetching alerts, e.g. while a slow channel's queue is full."""
        if paused:
            self._consumer.pause(*self.tps)
        else:
            self._consumer.resume(*self.tps)

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
