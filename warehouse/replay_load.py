"""Replay ``call-events`` into a new warehouse directory (the body of ``callstream rebuild``).

1. Take the log snapshot (event_log.py): the end offsets of the output topics,
   then of ``call-events``; saved with a fingerprint of the replay's settings
   and tariffs as ``replay/checkpoint.json`` in the building directory.
2. Replay each events partition alone into a directory of its own
   (replay_partition.py: the worker's own step, so versions, alerts, DLQ
   records and incomplete calls are the live pipeline's), several partitions
   at once in processes of their own (``workers``). A partition finished is
   checkpointed (its ``done.json``): a rebuild killed at any moment and started
   again with the same settings continues with the partitions not finished,
   up to the same snapshot.
3. Move every partition's files into the new warehouse (one manifest per
   partition), run the per-portal outage rule over every call's verdict,
   publish a manifest carrying the snapshot's offsets of all four topics (a
   sink started on the result continues exactly where the snapshot ends), and
   compact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.config import Settings
from warehouse import compaction, event_log
from warehouse.layout import fsync_dir, fsync_file
from warehouse.replay import PartitionOutputs, ReplayConfig, outage_alerts
from warehouse.replay_partition import (
    NO_POSITION,
    OUTAGE_SEQUENCE,
    SEQUENCE_BASE,
    PartitionJob,
    PartitionStats,
    finished,
    write_outputs,
)
from warehouse.replay_pool import run_jobs
from warehouse.writer import Writer

__all__ = ["NO_POSITION", "SEQUENCE_BASE", "LoadOptions", "Progress", "RebuildStats", "config_of", "load",
           "resumable"]
log = logging.getLogger("callstream.rebuild")
REPLAY_DIR = "replay"  # inside the building directory: checkpoint, partitions, staged verdicts
CHECKPOINT = "checkpoint.json"


@dataclass(frozen=True)
class LoadOptions:
    """How much to hold in memory at once, and how many partitions to replay at once."""

    chunk_events: int = 50_000  # valid events written per delta file
    memory_limit: str = "256MB"
    workers: int = 1  # processes replaying partitions at once (CALLSTREAM_REBUILD_WORKERS)


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
    resumed: int = 0  # partitions a previous, interrupted run had finished


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

    def partition_done(self, partition: int, messages: int) -> None:
        """Partition ``partition`` is replayed to the end (``messages`` read) and checkpointed."""

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
                        forget_after=settings.forget_after, native=settings.native)


def fingerprint(settings: Settings, config: ReplayConfig) -> str:
    """What must not change for an interrupted rebuild to be continued: the replay's settings,
    its tariffs, the topics and the broker."""
    # The table by its rows: a TariffTable's repr names its address, new in every process.
    parts = (repr(dataclasses.replace(config, tariffs=None)), repr(config.tariffs.rows), settings.bootstrap,
             settings.topic_events, settings.topic_cdrs,
             settings.topic_alerts, settings.topic_dlq)
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def resumable(building: Path, settings: Settings, config: ReplayConfig) -> bool:
    """``building`` holds an interrupted rebuild of these settings and tariffs."""
    try:
        saved = json.loads((building / REPLAY_DIR / CHECKPOINT).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and saved.get("fingerprint") == fingerprint(settings, config)


def load(settings: Settings, config: ReplayConfig, building: Path, options: LoadOptions = LoadOptions(),
         progress: Progress | None = None) -> RebuildStats:
    """Steps 1-3 into the directory ``building``; its manifest is complete on return."""
    began = time.monotonic()
    progress = progress or Progress()
    stats = RebuildStats()
    replay_dir = building / REPLAY_DIR
    snapshot = _snapshot(settings, config, replay_dir)
    stats.partitions, stats.truncated = len(snapshot.end), snapshot.truncated
    with Writer(building, grace_s=0.0, memory_limit=options.memory_limit) as writer:
        jobs, done = [], {}
        for p in sorted(snapshot.end):
            directory = replay_dir / f"part-{p}"
            counts = finished(directory)
            if counts is None:
                jobs.append(PartitionJob(settings, config, snapshot, p, directory, options.chunk_events,
                                         options.memory_limit, 1 if options.workers > 1 else None))
            else:
                done[p] = counts
        stats.resumed = len(done)
        progress.start(sum(snapshot.end[j.partition] - snapshot.begin[j.partition] for j in jobs))
        done.update(run_jobs(jobs, options.workers, progress))
        progress.check()
        for p in sorted(done):
            _add(stats, done[p])
            _adopt(writer, replay_dir / f"part-{p}")
        progress.phase("outages")
        _write_outages(writer, replay_dir, config, stats)
        writer.publish(offsets={snapshot.topic: snapshot.end, **snapshot.outputs})
        progress.check()
        progress.phase("compaction")
        compaction.compact_all(writer)
        writer.collect_garbage()
        writer.publish()  # a manifest that no longer lists the deleted deltas as retired
    shutil.rmtree(replay_dir, ignore_errors=True)
    stats.seconds = time.monotonic() - began
    return stats


def _snapshot(settings: Settings, config: ReplayConfig, replay_dir: Path) -> event_log.LogSnapshot:
    """The snapshot of an interrupted run of the same settings, or a new one (saved)."""
    path = replay_dir / CHECKPOINT
    if resumable(replay_dir.parent, settings, config):
        saved = json.loads(path.read_text())["snapshot"]
        return event_log.LogSnapshot(
            saved["topic"], {int(p): o for p, o in saved["begin"].items()},
            {int(p): o for p, o in saved["end"].items()},
            {t: {int(p): o for p, o in parts.items()} for t, parts in saved["outputs"].items()},
            saved["taken_at"])
    shutil.rmtree(replay_dir, ignore_errors=True)
    consumer = event_log.open_consumer(settings)
    try:
        snapshot = event_log.take_snapshot(consumer, settings)
    finally:
        consumer.close()
    replay_dir.mkdir(parents=True)
    saved = {"fingerprint": fingerprint(settings, config),
             "snapshot": {"topic": snapshot.topic, "begin": snapshot.begin, "end": snapshot.end,
                          "outputs": snapshot.outputs, "taken_at": snapshot.taken_at}}
    tmp = replay_dir / f".{CHECKPOINT}.tmp"
    tmp.write_text(json.dumps(saved))
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(replay_dir)
    return snapshot


def _add(stats: RebuildStats, counts: PartitionStats) -> None:
    for name in ("messages", "rejected", "calls", "incomplete", "alerts", "undecodable"):
        setattr(stats, name, getattr(stats, name) + getattr(counts, name))


def _adopt(writer: Writer, directory: Path) -> None:
    """Move a finished partition's files into the warehouse and publish them (idempotent:
    an adoption interrupted half-way is completed by the next run)."""
    from warehouse.layout import load_manifest

    manifest = load_manifest(directory)
    if manifest is None:
        return
    listed = writer.manifest.referenced()
    added = []
    for files in manifest.files.values():
        for data_file in files:
            if data_file.path in listed:
                continue
            source, target = directory / data_file.path, writer.root / data_file.path
            if source.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
            added.append(data_file)
    if added:
        for parent in {(writer.root / f.path).parent for f in added}:
            fsync_dir(parent)
        writer.publish(add=added)


def _write_outages(writer: Writer, replay_dir: Path, config: ReplayConfig, stats: RebuildStats) -> None:
    """The outage rule over every call's last verdict, per portal in event-time order."""
    from streams.domain.outages import PortalSignal

    if not any(replay_dir.glob("part-*/signals-*.parquet")):
        return
    pattern = str(replay_dir / "part-*" / "signals-*.parquet").replace("'", "''")
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
    counts = PartitionStats()
    write_outputs(writer, PartitionOutputs(alerts=alerts), counts, _OutageSequence())
    stats.alerts += counts.alerts
    stats.undecodable += counts.undecodable


class _OutageSequence:
    """Row positions of the outage alerts (a range after every partition's)."""

    def __init__(self) -> None:
        self.sequence = OUTAGE_SEQUENCE

    def add_signals(self, signals: list) -> None:
        pass

    def next_offsets(self, count: int) -> range:
        offsets = range(self.sequence, self.sequence + count)
        self.sequence += count
        return offsets
