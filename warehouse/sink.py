"""The sink: Kafka topics in, warehouse files out; the one writer of the warehouse.

One thread talks to Kafka (kafka-python ``KafkaConsumer``, manual assignment
of every partition of the four topics, ``enable_auto_commit`` off, committed
data only), one
flusher thread decodes and writes (DuckDB releases the GIL, so polling goes on
meanwhile), and a background :class:`~warehouse.compaction.Compactor`:

1. poll and buffer raw messages per topic;
2. every ``flush_interval_s`` (or ``flush_rows`` messages) hand the buffers to
   the flusher, which decodes them into typed rows (Arrow, vectorised) and
   calls :meth:`Writer.write`: files made durable, then a manifest published
   carrying the next offset of every partition;
3. only then commit those offsets to the consumer group (for lag monitoring:
   the manifest, not the group, is what the sink resumes from).

A message whose offset is below the manifest's position for its partition is
already in the warehouse and is skipped, so re-reading a topic from the
beginning (``--from-beginning``), a redelivery or a ``kill -9`` at any moment
followed by a restart leaves exactly the same tables. Duplicates *within* a
topic (a worker that re-emits after a restart) are resolved by the tables'
winner rules (schema.py).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field

from common.config import Settings
from common.kafka_clients import consumer_options
from warehouse.compaction import CompactionPolicy, Compactor
from warehouse.decode import RawBatch, decode_buffers, warm_up
from warehouse.writer import Batch, Writer

log = logging.getLogger("callstream.sink")

_STATS_EVERY_S = 10.0
# Small polls keep the loop responsive: flush deadlines are checked between them.
_POLL_RECORDS = 10_000


class SinkError(RuntimeError):
    """The sink cannot start (a topic is missing, Kafka is unreachable)."""


@dataclass(frozen=True)
class SinkOptions:
    """How often to flush, when to compact, and when to stop."""

    flush_interval_s: float = 0.5
    flush_rows: int = 100_000
    from_beginning: bool = False
    until_caught_up: bool = False
    policy: CompactionPolicy = field(default_factory=CompactionPolicy)


@dataclass
class SinkStats:
    """Counters of one run (logged periodically, returned at the end)."""

    messages: int = 0
    skipped: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    flushes: int = 0


def topic_tables(settings: Settings) -> dict[str, str]:
    """Topic name -> the table its messages feed."""
    return {settings.topic_cdrs: "cdrs", settings.topic_alerts: "alerts",
            settings.topic_events: "events", settings.topic_dlq: "dlq"}


def make_consumer(settings: Settings, options: SinkOptions):
    """A kafka-python consumer of the sink's group; offsets committed by hand.

    It reads committed data only: an aborted transaction never reaches the warehouse, and
    "caught up" means up to the last stable offset (an open transaction does not hold it).
    """
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        return KafkaConsumer(
            bootstrap_servers=settings.bootstrap.split(","), group_id=settings.sink_group,
            client_id="callstream-sink", enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=_POLL_RECORDS, fetch_max_wait_ms=100,
            fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024,
            **consumer_options(settings))
    except (KafkaError, OSError) as exc:
        raise SinkError(f"cannot reach Kafka at {settings.bootstrap}: {exc}") from None


class Sink:
    """Consumes the four topics into the warehouse of ``writer``."""

    def __init__(self, settings: Settings, writer: Writer, options: SinkOptions | None = None) -> None:
        self.settings = settings
        self.writer = writer
        self.options = options or SinkOptions()
        self.tables = topic_tables(settings)
        self.stats = SinkStats()
        self._buffers = {topic: RawBatch(topic) for topic in self.tables}
        self._pending: dict[str, dict[int, int]] = {}  # next offsets not yet published
        self._first_buffered: float | None = None
        self._inflight: tuple[Future, dict[str, dict[int, int]]] | None = None

    def run(self, stop: threading.Event) -> SinkStats:
        """Consume until ``stop`` is set (or caught up with ``until_caught_up``); flushes on exit."""
        consumer = make_consumer(self.settings, self.options)
        compactor = Compactor(self.writer, self.options.policy)
        flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-flush")
        with closing(self.writer.cursor()) as con:
            warm_up(con)
        compactor.start()
        try:
            partitions = self._assign(consumer)
            self._loop(consumer, partitions, stop, flusher)
            self._flush(consumer, flusher)
            self._settle(consumer)
        finally:
            flusher.shutdown(wait=True)
            compactor.stop()
            consumer.close(autocommit=False)
        return self.stats

    def _assign(self, consumer) -> list:
        from kafka import TopicPartition

        partitions = []
        for topic in self.tables:
            ids = None
            for _ in range(10):
                ids = consumer.partitions_for_topic(topic)
                if ids:
                    break
                time.sleep(0.3)  # metadata of a just-created topic may lag
            if not ids:
                raise SinkError(f"topic {topic!r} does not exist on {self.settings.bootstrap} "
                                "(create it with `callstream topics create`)")
            partitions += [TopicPartition(topic, p) for p in sorted(ids)]
        consumer.assign(partitions)
        applied = self.writer.manifest.offsets
        for tp in partitions:
            position = applied.get(tp.topic, {}).get(tp.partition)
            if position is None or self.options.from_beginning:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, position)
        return partitions

    def _loop(self, consumer, partitions: list, stop: threading.Event, flusher: ThreadPoolExecutor) -> None:
        last_stats = time.monotonic()
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=self._poll_timeout_ms(), max_records=_POLL_RECORDS)
            for tp, records in polled.items():
                self._buffer(tp.topic, tp.partition, records)
            self._settle(consumer, block=False)
            if self._flush_due():
                self._flush(consumer, flusher)
            if not polled and self.options.until_caught_up and self._caught_up(consumer, partitions):
                return
            if time.monotonic() - last_stats >= _STATS_EVERY_S:
                log.info("sink: %d messages, %d skipped, rows %s, %d flushes", self.stats.messages,
                         self.stats.skipped, self.stats.rows, self.stats.flushes)
                last_stats = time.monotonic()

    def _poll_timeout_ms(self) -> int:
        if self._first_buffered is None:
            return int(self.options.flush_interval_s * 1000)
        left = self._first_buffered + self.options.flush_interval_s - time.monotonic()
        return max(0, int(left * 1000))

    def _buffer(self, topic: str, partition: int, records: list) -> None:
        applied = self.writer.manifest.offsets.get(topic, {}).get(partition, 0)
        buffer = self._buffers[topic]
        for record in records:
            if record.offset < applied:
                self.stats.skipped += 1  # already in the warehouse (re-read from the beginning)
                continue
            buffer.add(partition, record.offset, record.timestamp, record.key, record.value)
        self.stats.messages += len(records)
        if records and records[-1].offset >= applied:
            self._pending.setdefault(topic, {})[partition] = records[-1].offset + 1
            if self._first_buffered is None:
                self._first_buffered = time.monotonic()

    def _flush_due(self) -> bool:
        if self._first_buffered is None:
            return False
        buffered = sum(len(b) for b in self._buffers.values())
        return (buffered >= self.options.flush_rows
                or time.monotonic() - self._first_buffered >= self.options.flush_interval_s)

    def _flush(self, consumer, flusher: ThreadPoolExecutor) -> None:
        """Hand the buffered messages to the flusher thread and keep polling meanwhile.

        One flush at a time: the previous one is settled (published, then committed) first.
        """
        if not self._pending:
            return
        self._settle(consumer)
        buffers, offsets = self._buffers, self._pending
        self._buffers = {topic: RawBatch(topic) for topic in self.tables}
        self._pending = {}
        self._first_buffered = None
        self._inflight = (flusher.submit(self._write, buffers, offsets), offsets)

    def _write(self, buffers: dict[str, RawBatch], offsets: dict[str, dict[int, int]]) -> dict[str, int]:
        """(flusher thread) Decode, then write durably and publish; rows written per table."""
        with closing(self.writer.cursor()) as con:
            tables = decode_buffers(con, buffers, self.tables)
        if "rejects" in tables:
            log.warning("sink: %d messages refused (table rejects: topic, position, reason)",
                        tables["rejects"].num_rows)
        self.writer.write(Batch(tables, offsets))
        return {table: rows.num_rows for table, rows in tables.items()}

    def _settle(self, consumer, block: bool = True) -> None:
        """Once the flush in flight is published, commit its offsets (it re-raises a failed write)."""
        if self._inflight is None:
            return
        future, offsets = self._inflight
        if not block and not future.done():
            return
        rows = future.result()
        self._inflight = None
        self._commit(consumer, offsets)  # durable and published: only now may Kafka hear of it
        for table, count in rows.items():
            self.stats.rows[table] = self.stats.rows.get(table, 0) + count
        self.stats.flushes += 1

    def _commit(self, consumer, offsets: dict[str, dict[int, int]]) -> None:
        from kafka import TopicPartition
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        commit = {TopicPartition(topic, p): OffsetAndMetadata(offset, "", -1)
                  for topic, parts in offsets.items() for p, offset in parts.items()}
        try:
            consumer.commit(commit)
        except KafkaError as exc:
            # The manifest already holds these offsets; the group only mirrors them for lag tools.
            log.warning("sink: offset commit failed (%s); the warehouse is unaffected", exc)

    def _caught_up(self, consumer, partitions: list) -> bool:
        ends = consumer.end_offsets(partitions)
        return all(consumer.position(tp) >= ends[tp] for tp in partitions)
