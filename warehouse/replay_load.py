"""Replay ``call-events`` into a new warehouse directory (the body of ``callstream rebuild``).

1. Take the log snapshot (event_log.py): the end offsets of the output topics,
   then of ``call-events``.
2. Replay each events partition alone (replay.py: the worker's own step, so
   versions, alerts, DLQ records and incomplete calls are the live
   pipeline's), writing valid events as the sink writes them and, at the end
   of the partition, each call's last CDR and alert messages, decoded by the
   sink's own decoder — all through the warehouse's one write path
   (:class:`~warehouse.writer.Writer`).
3. Run the per-portal outage rule over every call's verdict; publish a
   manifest carrying the snapshot's offsets of all four topics (a sink started
   on the result continues exactly where the snapshot ends); compact.

Rows that did not come from an output topic (CDRs, alerts, DLQ records) carry
``kafka_partition`` = ``kafka_offset`` = -1: a message the sink reads later for
the same call or alert wins a tie of the winner rules (it is newer). A DLQ
row's ``ts`` (the Kafka time of the DLQ message) is the rejected event's own
broker timestamp, the moment the worker would have rejected it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
import pyarrow as pa

from callstream.config import Settings
from warehouse import compaction, event_log
from warehouse.decode import RawBatch, decode_json, events_table
from warehouse.replay import PartitionOutputs, PartitionReplay, ReplayConfig, outage_alerts
from warehouse.writer import Batch, Writer

NO_POSITION = -1  # kafka_partition / kafka_offset of rows not read from an output topic
_SIGNAL_SCHEMA = pa.schema([("portal_id", pa.string()), ("call_id", pa.string()),
                            ("verdict", pa.string()), ("ts_us", pa.int64())])


@dataclass(frozen=True)
class LoadOptions:
    """How much to hold in memory at once."""

    chunk_events: int = 50_000  # valid events written per delta file
    memory_limit: str = "256MB"


@dataclass
class RebuildStats:
    """What one rebuild read and wrote."""

    messages: int = 0
    rejected: int = 0
    calls: int = 0
    incomplete: int = 0
    alerts: int = 0
    undecodable: int = 0  # rebuilt rows the sink's decoder refused (a bug if ever > 0)
    partitions: int = 0
    truncated: list[int] = field(default_factory=list)
    seconds: float = 0.0


class Progress:
    """What a long rebuild reports as it goes, and how it is asked to stop; silent by default.

    ``stop`` is checked between batches: once set, the rebuild raises KeyboardInterrupt at
    the next safe point (never from inside DuckDB or Kafka calls).
    """

    def __init__(self) -> None:
        self.stop = threading.Event()

    def start(self, total: int) -> None:
        """The number of messages the rebuild will read."""

    def update(self, messages: int) -> None:
        """``messages`` more were read."""

    def phase(self, name: str) -> None:
        """Reading is done; now ``name`` (outages, compaction, report)."""

    def check(self) -> None:
        """Raise KeyboardInterrupt when a stop was asked for."""
        if self.stop.is_set():
            raise KeyboardInterrupt


def config_of(settings: Settings, tariffs) -> ReplayConfig:
    """The worker's configuration from the settings, with the rebuild's tariffs."""
    from streams.domain.alerts import AlertRules

    rules = AlertRules(outage_calls=settings.outage_calls,
                       outage_window_us=int(settings.outage_window * 1_000_000),
                       stale_key_after_us=int(settings.stale_key_after * 1_000_000))
    return ReplayConfig(tariffs, rules, settings.incomplete_after, settings.topic_events)


def load(settings: Settings, config: ReplayConfig, building: Path, options: LoadOptions = LoadOptions(),
         progress: Progress | None = None) -> RebuildStats:
    """Steps 1-3 into the directory ``building``; its manifest is complete on return."""
    began = time.monotonic()
    progress = progress or Progress()
    stats = RebuildStats()
    consumer = event_log.open_consumer(settings)
    try:
        snapshot = event_log.take_snapshot(consumer, settings)
        stats.partitions, stats.truncated = len(snapshot.end), snapshot.truncated
        progress.start(snapshot.total)
        with Writer(building, grace_s=0.0, memory_limit=options.memory_limit) as writer:
            signals = [_replay_partition(consumer, snapshot, p, writer, config, options, stats, progress)
                       for p in sorted(snapshot.end)]
            progress.check()
            progress.phase("outages")
            _write_outages(writer, pa.concat_tables(signals), config, stats)
            writer.publish(offsets={snapshot.topic: snapshot.end, **snapshot.outputs})
            progress.check()
            progress.phase("compaction")
            compaction.compact_all(writer)
            writer.collect_garbage()
            writer.publish()  # a manifest that no longer lists the deleted deltas as retired
    finally:
        consumer.close()
    stats.seconds = time.monotonic() - began
    return stats


def _replay_partition(consumer, snapshot, partition: int, writer: Writer, config: ReplayConfig,
                      options: LoadOptions, stats: RebuildStats, progress: Progress) -> pa.Table:
    """Replay one partition into ``writer``; its calls' final verdicts (for the outage rule)."""
    replay = PartitionReplay(config, partition)
    for records in event_log.read_partition(consumer, snapshot, partition):
        for r in records:
            replay.feed(r.offset, r.timestamp, r.key, r.value)
        if len(replay.valid) >= options.chunk_events:
            _write_rows(writer, replay)
        progress.update(len(records))
        progress.check()
    _write_rows(writer, replay)
    outputs = replay.finish(snapshot.taken_at)
    stats.messages += replay.messages
    stats.rejected += replay.rejected
    stats.calls += len(outputs.cdrs)
    stats.incomplete += outputs.incomplete
    _write_outputs(writer, outputs, stats)
    return pa.table({"portal_id": [s.portal_id for s in outputs.signals],
                     "call_id": [s.call_id for s in outputs.signals],
                     "verdict": [s.verdict for s in outputs.signals],
                     "ts_us": [s.ts_us for s in outputs.signals]}, schema=_SIGNAL_SCHEMA)


def _write_rows(writer: Writer, replay: PartitionReplay) -> None:
    """The valid events (as the sink writes them) and DLQ records fed so far."""
    valid, dlq = replay.take_rows()
    tables: dict[str, object] = {}
    if valid:
        tables["events"] = events_table(valid)
    if dlq:
        raw = RawBatch("dlq")
        for timestamp_ms, value in dlq:
            raw.add(NO_POSITION, NO_POSITION, timestamp_ms, None, value)
        tables.update(_decoded(writer, "dlq", raw))
    if tables:
        writer.write(Batch(tables))


def _write_outputs(writer: Writer, outputs: PartitionOutputs, stats: RebuildStats) -> None:
    tables: dict[str, object] = {}
    for table, messages in (("cdrs", outputs.cdrs), ("alerts", outputs.alerts)):
        raw = RawBatch(table)
        for value in messages.values():
            raw.add(NO_POSITION, NO_POSITION, 0, None, value)
        if len(raw):
            decoded = _decoded(writer, table, raw)
            if "rejects" in decoded and "rejects" in tables:
                decoded["rejects"] = pa.concat_tables([tables["rejects"], decoded["rejects"]])
            tables.update(decoded)
    stats.alerts += len(outputs.alerts)
    if "rejects" in tables:
        stats.undecodable += tables["rejects"].num_rows
    if tables:
        writer.write(Batch(tables))


def _decoded(writer: Writer, table: str, raw: RawBatch) -> dict[str, object]:
    """Rows of ``table`` decoded by the sink's own decoder (so they are what it would store)."""
    con = writer.cursor()
    try:
        good, bad = decode_json(con, table, raw)
    finally:
        con.close()
    return {table: good, "rejects": bad} if bad.num_rows else {table: good}


def _write_outages(writer: Writer, signals: pa.Table, config: ReplayConfig, stats: RebuildStats) -> None:
    """The outage rule over every call's verdict, per portal in event-time order."""
    from streams.domain.outages import PortalSignal

    con = writer.cursor()
    try:
        con.register("signals", signals)
        ordered = con.execute("SELECT portal_id, call_id, verdict, ts_us FROM signals "
                              "ORDER BY portal_id, ts_us, call_id").fetchall()
    finally:
        con.close()
    alerts = outage_alerts((PortalSignal(*row) for row in ordered), config.rules)
    _write_outputs(writer, PartitionOutputs(alerts=alerts), stats)
