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

Rows that did not come from an output topic carry ``kafka_partition`` = -1
and, for CDRs and alerts, a negative ``kafka_offset`` that grows with each
row written (``SEQUENCE_BASE`` + n): a call whose outputs were handed over
twice (it left memory and came back) has its later row win the winner rule's
tie, and a message the sink reads later for the same call or alert (offset
>= 0) is newer than all of them. DLQ rows carry -1. A DLQ row's ``ts`` (the
Kafka time of the DLQ message) is the rejected event's own broker
timestamp, the moment the worker would have rejected it.

Memory stays bounded (issue 12): the replay hands over the outputs of calls
that leave memory for its on-disk store as it goes, and the calls' verdicts
are staged in Parquet files until the outage rule reads them back in order.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from common.config import Settings
from warehouse import compaction, event_log
from warehouse.decode import RawBatch, decode_json, events_table
from warehouse.replay import CallSpill, PartitionOutputs, PartitionReplay, ReplayConfig, outage_alerts
from warehouse.writer import Batch, Writer

NO_POSITION = -1  # kafka_partition / kafka_offset of rows not read from an output topic
SEQUENCE_BASE = -(2**62)  # kafka_offset of the rebuild's CDR and alert rows: SEQUENCE_BASE + n
REPLAY_DIR = "replay"  # inside the building directory: the call store and staged verdicts
_SIGNAL_SCHEMA = pa.schema([("portal_id", pa.string()), ("call_id", pa.string()),
                            ("verdict", pa.string()), ("ts_us", pa.int64()), ("seq", pa.int64())])


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
    return ReplayConfig(tariffs, rules, settings.incomplete_after, settings.topic_events,
                        recording_wait=settings.recording_wait, max_events=settings.max_call_events,
                        forget_after=settings.forget_after)


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
            staging = _Staging(building / REPLAY_DIR)
            try:
                for p in sorted(snapshot.end):
                    _replay_partition(consumer, snapshot, p, writer, config, options, stats, progress,
                                      staging)
                progress.check()
                progress.phase("outages")
                _write_outages(writer, staging, config, stats)
            finally:
                staging.close()
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


class _Staging:
    """The rebuild's scratch space: the call store of the partition being replayed, the
    verdicts of every call (Parquet files, read back sorted), and the row sequence."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.files = 0
        self.sequence = SEQUENCE_BASE

    def spill(self, partition: int) -> CallSpill:
        path = self.directory / f"calls-{partition}"
        path.mkdir()
        return CallSpill(path)

    def add_signals(self, signals: list) -> None:
        if not signals:
            return
        table = pa.table({"portal_id": [s.portal_id for s in signals],
                          "call_id": [s.call_id for s in signals],
                          "verdict": [s.verdict for s in signals],
                          "ts_us": [s.ts_us for s in signals],
                          "seq": list(range(self.sequence, self.sequence + len(signals)))},
                         schema=_SIGNAL_SCHEMA)
        self.sequence += len(signals)
        pq.write_table(table, self.directory / f"signals-{self.files:06d}.parquet")
        self.files += 1

    def next_offsets(self, count: int) -> range:
        offsets = range(self.sequence, self.sequence + count)
        self.sequence += count
        return offsets

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _replay_partition(consumer, snapshot, partition: int, writer: Writer, config: ReplayConfig,
                      options: LoadOptions, stats: RebuildStats, progress: Progress,
                      staging: _Staging) -> None:
    """Replay one partition into ``writer``; its calls' verdicts go to ``staging``."""
    spill = staging.spill(partition)
    try:
        replay = PartitionReplay(config, partition, spill)
        for records in event_log.read_partition(consumer, snapshot, partition):
            for r in records:
                replay.feed(r.offset, r.timestamp, r.key, r.value)
            if len(replay.valid) >= options.chunk_events:
                _write_rows(writer, replay)
                _write_outputs(writer, replay.take_outputs(), stats, staging)
            progress.update(len(records))
            progress.check()
        _write_rows(writer, replay)
        _write_outputs(writer, replay.take_outputs(), stats, staging)
        _write_outputs(writer, replay.finish(snapshot.taken_at), stats, staging)
    finally:
        spill.close()
    stats.messages += replay.messages
    stats.rejected += replay.rejected


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


def _write_outputs(writer: Writer, outputs: PartitionOutputs, stats: RebuildStats,
                   staging: _Staging) -> None:
    stats.calls += outputs.calls
    stats.incomplete += outputs.incomplete
    staging.add_signals(outputs.signals)
    tables: dict[str, object] = {}
    for table, messages in (("cdrs", outputs.cdrs), ("alerts", outputs.alerts)):
        raw = RawBatch(table)
        for offset, value in zip(staging.next_offsets(len(messages)), messages.values()):
            raw.add(NO_POSITION, offset, 0, None, value)
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


def _write_outages(writer: Writer, staging: _Staging, config: ReplayConfig, stats: RebuildStats) -> None:
    """The outage rule over every call's last verdict, per portal in event-time order."""
    from streams.domain.outages import PortalSignal

    if not staging.files:
        return
    pattern = str(staging.directory / "signals-*.parquet").replace("'", "''")
    con = writer.cursor()
    try:
        cursor = con.execute(
            f"SELECT portal_id, call_id, verdict, ts_us FROM read_parquet('{pattern}') "
            "QUALIFY row_number() OVER (PARTITION BY call_id ORDER BY seq DESC) = 1 "
            "ORDER BY portal_id, ts_us, call_id")

        def rows():
            while batch := cursor.fetchmany(10_000):
                for row in batch:
                    yield PortalSignal(*row)

        alerts = outage_alerts(rows(), config.rules)
    finally:
        con.close()
    _write_outputs(writer, PartitionOutputs(alerts=alerts), stats, staging)
