"""Reading ``call-events`` from the beginning, for ``callstream rebuild``.

A kafka-python consumer without a group (``group_id=None``: nothing is
committed, nobody else's offsets move), partitions assigned by hand. The
rebuild reads each partition from its first offset to the end offset taken at
start (its *snapshot*); later messages are the live pipeline's business, and
the sink picks them up from the rebuilt warehouse's manifest.

Like the worker, it reads committed data only (aborted transactions are not
events). Its end offsets are then the *last stable offsets*: an open
transaction ends the snapshot before its first record instead of leaving the
rebuild waiting for records it may not read; the live worker folds them once
they are committed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from common.config import Settings
from common.kafka_clients import consumer_options, librdkafka_options

# One message can be over 1 MiB (the contract sends those to the DLQ as too_large).
_FETCH_MAX_BYTES = 64 * 1024 * 1024
_PARTITION_FETCH_BYTES = 8 * 1024 * 1024
_POLL_RECORDS = 10_000


class LogError(RuntimeError):
    """The event log cannot be read (broker unreachable, topic missing)."""


@dataclass(frozen=True)
class LogSnapshot:
    """Where the rebuild starts and stops, taken once at start."""

    topic: str
    begin: dict[int, int]  # events partition -> first offset still in the log
    end: dict[int, int]  # events partition -> end offset (exclusive) at start
    outputs: dict[str, dict[int, int]]  # cdrs/alerts/dlq topic -> partition -> end offset
    taken_at: float  # wall clock (the worker's clock at the snapshot), seconds

    @property
    def total(self) -> int:
        """Messages the rebuild will read."""
        return sum(self.end[p] - self.begin[p] for p in self.end)

    @property
    def truncated(self) -> list[int]:
        """Partitions whose oldest messages were already deleted (retention)."""
        return sorted(p for p, first in self.begin.items() if first > 0)


def open_consumer(settings: Settings):
    """A group-less kafka-python consumer, or LogError naming the broker."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        return KafkaConsumer(
            bootstrap_servers=settings.bootstrap.split(","), group_id=None,
            client_id="callstream-rebuild", enable_auto_commit=False,
            max_poll_records=_POLL_RECORDS, fetch_max_wait_ms=100, fetch_max_bytes=_FETCH_MAX_BYTES,
            max_partition_fetch_bytes=_PARTITION_FETCH_BYTES, **consumer_options(settings))
    except (KafkaError, OSError) as exc:
        raise LogError(f"cannot reach Kafka at {settings.bootstrap}: {exc}") from None


def _partitions(consumer, topic: str) -> list:
    from kafka import TopicPartition

    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def take_snapshot(consumer, settings: Settings) -> LogSnapshot:
    """End offsets of the output topics, *then* of the events topic, and first offsets.

    In that order: every output message before the outputs' end was produced from an
    event already in the log, hence below the events' end, hence rebuilt.
    """
    from kafka.errors import KafkaError

    try:
        outputs = {}
        for topic in (settings.topic_cdrs, settings.topic_alerts, settings.topic_dlq):
            parts = _partitions(consumer, topic)
            if parts:
                outputs[topic] = {tp.partition: end for tp, end in consumer.end_offsets(parts).items()}
        taken_at = time.time()
        events = _partitions(consumer, settings.topic_events)
        if not events:
            raise LogError(f"topic {settings.topic_events!r} does not exist on {settings.bootstrap}")
        end = {tp.partition: o for tp, o in consumer.end_offsets(events).items()}
        begin = {tp.partition: o for tp, o in consumer.beginning_offsets(events).items()}
    except KafkaError as exc:
        raise LogError(f"cannot read offsets from Kafka at {settings.bootstrap}: {exc}") from None
    return LogSnapshot(settings.topic_events, begin, end, outputs, taken_at)


def read_partition(consumer, snapshot: LogSnapshot, partition: int,
                   timeout_s: float = 60.0) -> Iterator[list]:
    """Batches of records of one events partition, from its first offset to the snapshot's end.

    LogError when no record arrives for ``timeout_s`` (the broker went away).
    """
    from kafka import TopicPartition
    from kafka.errors import KafkaError

    tp = TopicPartition(snapshot.topic, partition)
    end = snapshot.end[partition]
    consumer.assign([tp])
    consumer.seek(tp, snapshot.begin[partition])
    last_progress = time.monotonic()
    # The consumer's position, not the last record's offset + 1: it also steps over offsets
    # that hold no record (transaction markers, compaction).
    while (position := consumer.position(tp)) < end:
        try:
            records = consumer.poll(timeout_ms=500, max_records=_POLL_RECORDS).get(tp, [])
        except KafkaError as exc:
            raise LogError(f"reading {snapshot.topic}[{partition}] failed: {exc}") from None
        if consumer.position(tp) > position:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > timeout_s:
            raise LogError(f"no progress reading {snapshot.topic}[{partition}] at offset "
                           f"{position} for {timeout_s:.0f} s")
        records = [r for r in records if r.offset < end]
        if records:
            yield records


def _confluent_options(settings: Settings) -> dict:
    """The rebuild's librdkafka consumer: the project's options, no commits, every offset from the first."""
    return {**librdkafka_options(settings), "group.id": "callstream-rebuild",
            "client.id": "callstream-rebuild", "enable.auto.commit": False,
            "enable.auto.offset.store": False, "enable.partition.eof": True, "auto.offset.reset": "earliest",
            "fetch.max.bytes": _FETCH_MAX_BYTES, "max.partition.fetch.bytes": _PARTITION_FETCH_BYTES,
            # Read ahead up to 16 MiB (~50,000 events): the replay never waits on the broker
            # with that, and each replay process holds no more (64 MiB was a tenth of its RSS).
            "queued.max.messages.kbytes": 16384}


def read_records(settings: Settings, snapshot: LogSnapshot, partition: int,
                 timeout_s: float = 60.0) -> Iterator[list[tuple]]:
    """Batches of (offset, timestamp ms, key, value) of one events partition, from its first
    offset to the snapshot's end: the replay's bulk reader.

    librdkafka (confluent-kafka) fetches, decompresses and parses the records in its own
    threads; kafka-python took 16 µs of CPU per record, more than the whole fold. Committed
    data only, no group (nothing is committed). LogError when no record arrives for
    ``timeout_s`` (the broker went away).
    """
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    end = snapshot.end[partition]
    if snapshot.begin[partition] >= end:
        return
    try:
        consumer = Consumer(_confluent_options(settings))
    except KafkaException as exc:
        raise LogError(f"cannot reach Kafka at {settings.bootstrap}: {exc}") from None
    try:
        consumer.assign([TopicPartition(snapshot.topic, partition, snapshot.begin[partition])])
        last_progress, position = time.monotonic(), snapshot.begin[partition]
        while position < end:
            batch, eof = [], False
            for message in consumer.consume(_POLL_RECORDS, 0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        eof = True  # the log's end (at or past the snapshot's): nothing more to read
                        continue
                    if error.fatal() or not error.retriable():
                        raise LogError(f"reading {snapshot.topic}[{partition}] failed: {error.str()}")
                    continue
                offset = message.offset()
                if offset >= end:
                    position = end
                    break
                batch.append((offset, message.timestamp()[1], message.key(), message.value()))
                position = offset + 1
            if batch:
                last_progress = time.monotonic()
                yield batch
            if eof:
                return
            if time.monotonic() - last_progress > timeout_s:
                raise LogError(f"no progress reading {snapshot.topic}[{partition}] at offset "
                               f"{position} for {timeout_s:.0f} s")
    finally:
        consumer.close()
