"""One events partition replayed into a directory of its own (the unit of a rebuild's work).

A partition's rows go to a small warehouse of their own,
``<building>/replay/part-<p>/`` (its own :class:`~warehouse.writer.Writer`,
manifest and delta files), with its calls' verdicts staged beside them
(``signals-*.parquet``) and its call store (``spill/``, RocksDB). When the
partition is complete, ``done.json`` (its counts) is written last, atomically:
that file is the checkpoint. A partition directory without it is the remains
of an interrupted run and is replayed again from scratch; one with it is
adopted by the rebuild as it is (``replay_load.py`` moves its files into the
new generation). Partitions share nothing, so several run at once, each in a
process of its own.

Rows that did not come from an output topic carry ``kafka_partition`` = -1
and, for CDRs and alerts, a negative ``kafka_offset`` that grows with each row
written (:func:`sequence_base` + n, a range of its own per partition): a call
whose outputs were handed over twice (it left memory and came back) has its
later row win the winner rule's tie, and a message the sink reads later for
the same call or alert (offset >= 0) is newer than all of them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from common.config import Settings
from warehouse import event_log, output_rows
from warehouse.decode import RawBatch, decode_json
from warehouse.events_rows import events_rows
from warehouse.layout import fsync_dir, fsync_file
from warehouse.replay import CallSpill, PartitionOutputs, PartitionReplay, ReplayConfig
from warehouse.writer import Batch, Writer

NO_POSITION = -1  # kafka_partition / kafka_offset of rows not read from an output topic
SEQUENCE_BASE = -(2**62)  # kafka_offset of the rebuild's CDR and alert rows: a range per partition
SEQUENCE_SPAN = 2**40  # rows of one partition's range (the outage alerts have the last range)
OUTAGE_SEQUENCE = SEQUENCE_BASE + 2**61
DONE = "done.json"
SIGNAL_SCHEMA = pa.schema([("portal_id", pa.string()), ("call_id", pa.string()),
                           ("verdict", pa.string()), ("ts_us", pa.int64()), ("seq", pa.int64())])


def sequence_base(partition: int) -> int:
    """The first ``kafka_offset`` of a partition's CDR and alert rows."""
    return SEQUENCE_BASE + partition * SEQUENCE_SPAN


@dataclass(frozen=True)
class PartitionJob:
    """What one process needs to replay one partition (everything here pickles)."""

    settings: Settings
    config: ReplayConfig
    snapshot: event_log.LogSnapshot
    partition: int
    directory: Path
    chunk_events: int = 50_000  # valid events per delta file
    memory_limit: str = "256MB"
    threads: int | None = None  # DuckDB threads (one per process when several run)


@dataclass
class PartitionStats:
    """Counts of one replayed partition (``done.json``)."""

    messages: int = 0
    rejected: int = 0
    calls: int = 0
    incomplete: int = 0
    alerts: int = 0
    undecodable: int = 0


def finished(directory: Path) -> PartitionStats | None:
    """The counts of a partition replayed to the end, or None when it is not."""
    try:
        return PartitionStats(**json.loads((directory / DONE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def replay_partition(job: PartitionJob, report: Callable[[int], None],
                     check: Callable[[], None]) -> PartitionStats:
    """Replay ``job.partition`` into ``job.directory`` (cleared first); ``report`` gets the
    number of messages read after each batch, ``check`` raises to stop between batches."""
    shutil.rmtree(job.directory, ignore_errors=True)
    job.directory.mkdir(parents=True)
    stats = PartitionStats()
    staging = _Staging(job.directory, sequence_base(job.partition))
    with Writer(job.directory, grace_s=0.0, memory_limit=job.memory_limit, threads=job.threads,
                delta_compression="snappy") as writer:
        (job.directory / "spill").mkdir()
        spill = CallSpill(job.directory / "spill")
        try:
            replay = PartitionReplay(job.config, job.partition, spill)
            for records in event_log.read_records(job.settings, job.snapshot, job.partition):
                replay.feed_many(records)
                if len(replay.valid) >= job.chunk_events:
                    _write_rows(writer, replay.take_folded_rows())
                    write_outputs(writer, replay.take_outputs(), stats, staging)
                report(len(records))
                check()
            _write_rows(writer, replay.take_rows())
            write_outputs(writer, replay.take_outputs(), stats, staging)
            write_outputs(writer, replay.finish(job.snapshot.taken_at), stats, staging)
            stats.messages, stats.rejected = replay.messages, replay.rejected
        finally:
            spill.close()
    shutil.rmtree(job.directory / "spill", ignore_errors=True)
    _write_done(job.directory, stats)
    return stats


def _write_done(directory: Path, stats: PartitionStats) -> None:
    tmp = directory / f".{DONE}.tmp"
    tmp.write_text(json.dumps(asdict(stats)))
    fsync_file(tmp)
    os.replace(tmp, directory / DONE)
    fsync_dir(directory)


class _Staging:
    """A partition's verdicts (Parquet files, read back sorted) and its row sequence."""

    def __init__(self, directory: Path, sequence: int) -> None:
        self.directory = directory
        self.files = 0
        self.sequence = sequence

    def add_signals(self, signals: list) -> None:
        if not signals:
            return
        table = pa.table({"portal_id": [s.portal_id for s in signals],
                          "call_id": [s.call_id for s in signals],
                          "verdict": [s.verdict for s in signals],
                          "ts_us": [s.ts_us for s in signals],
                          "seq": list(range(self.sequence, self.sequence + len(signals)))},
                         schema=SIGNAL_SCHEMA)
        self.sequence += len(signals)
        pq.write_table(table, self.directory / f"signals-{self.files:06d}.parquet")
        self.files += 1

    def next_offsets(self, count: int) -> range:
        offsets = range(self.sequence, self.sequence + count)
        self.sequence += count
        return offsets


def _write_rows(writer: Writer, rows: tuple[list, list]) -> None:
    """Valid events (as the sink writes them) and DLQ records."""
    valid, dlq = rows
    tables: dict[str, object] = {}
    if valid:
        tables["events"] = events_rows(valid)
    if dlq:
        raw = RawBatch("dlq")
        for timestamp_ms, value in dlq:
            raw.add(NO_POSITION, NO_POSITION, timestamp_ms, None, value)
        tables.update(_decoded(writer, "dlq", raw))
    if tables:
        writer.write(Batch(tables))


def write_outputs(writer: Writer, outputs: PartitionOutputs, stats: PartitionStats, staging) -> None:
    """Handed-over CDRs (plain ones by output_rows.py, the others and the alerts by the sink's
    decoder), and verdicts to ``staging``."""
    stats.calls += outputs.calls
    stats.incomplete += outputs.incomplete
    staging.add_signals(outputs.signals)
    tables: dict[str, object] = {}
    for table, messages in (("cdrs", outputs.cdrs), ("alerts", outputs.alerts)):
        raw = RawBatch(table)
        offsets = staging.next_offsets(len(messages))
        pairs: list[tuple[int, bytes]] | zip = zip(offsets, messages.values())
        parts = []
        if table == "cdrs" and messages:
            con = writer.cursor()
            try:
                fast, pairs = output_rows.split_cdrs(con, messages.values(), offsets, NO_POSITION)
            finally:
                con.close()
            if fast is not None:
                parts.append(fast)
        for offset, value in pairs:
            raw.add(NO_POSITION, offset, 0, None, value)
        if len(raw):
            decoded = _decoded(writer, table, raw)
            parts.append(decoded.pop(table))
            if "rejects" in decoded and "rejects" in tables:
                decoded["rejects"] = pa.concat_tables([tables["rejects"], decoded["rejects"]])
            tables.update(decoded)
        if parts:
            tables[table] = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
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
