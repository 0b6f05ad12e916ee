"""The one write path of the warehouse: durable Parquet files, then an atomic manifest.

Every write — the sink's deltas, the compactor's merges, a bulk load by the
benchmark generator or by ``callstream rebuild`` — goes through a
:class:`Writer`. Order of durability, which is what makes ``kill -9`` harmless:

1. rows are written with DuckDB ``COPY ... TO`` into a temporary file, which
   is fsynced and atomically renamed to its final, never-reused name;
2. a new manifest listing the file (and the Kafka offsets the rows came up
   to) is written to a temporary file, fsynced and ``os.replace``d;
3. only then may the caller commit offsets to Kafka.

A crash before 2 leaves an orphan file that no manifest lists (swept later);
a crash after 2 re-reads nothing, because the sink resumes from the
manifest's offsets. Files a new manifest no longer lists are *retired* and
deleted only after ``grace_s``, so readers holding the previous manifest can
finish their queries.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from warehouse import call_index, duck, rollups, schema
from warehouse.delta_log import LOG_DIR, DeltaPublisher
from warehouse.integrity import file_crc32c
from warehouse.layout import (
    DATA,
    LOCK,
    DataFile,
    Manifest,
    Quarantined,
    Retired,
    fsync_dir,
    fsync_file,
    load_manifest,
    new_file_path,
    publish_manifest,
    table_of,
    tmp_path_for,
)

DEFAULT_GRACE_S = 60.0
log = logging.getLogger(__name__)


class WriterBusy(RuntimeError):
    """Another process is already writing this warehouse."""


@dataclass
class Batch:
    """Rows for some tables plus the Kafka positions they bring the warehouse up to.

    ``tables`` maps a table name to a pyarrow Table (or anything DuckDB can scan)
    with that table's columns; ``offsets`` maps topic -> partition -> next offset.
    """

    tables: dict[str, object] = field(default_factory=dict)
    offsets: dict[str, dict[int, int]] = field(default_factory=dict)


def _kafka_offsets(con: duckdb.DuckDBPyConnection, spec: schema.TableSpec,
                   path: Path) -> tuple[tuple[int, int, int], ...]:
    """(partition, first offset, last offset) of the rows of a file, for tables that keep them."""
    names = {name for name, _ in spec.columns}
    if not {"kafka_partition", "kafka_offset"} <= names or "topic" in names:  # rejects: several topics
        return ()
    rows = con.execute("SELECT kafka_partition, min(kafka_offset), max(kafka_offset) FROM read_parquet(?) "
                       "WHERE kafka_partition IS NOT NULL GROUP BY 1 ORDER BY 1", [str(path)]).fetchall()
    return tuple((int(p), int(lo), int(hi)) for p, lo, hi in rows)


def now_us() -> int:
    """Wall-clock UTC microseconds (publication times, retirement times)."""
    return time.time_ns() // 1000


def take_lock(path: Path) -> int:
    """An exclusive, non-blocking flock on ``path`` (a warehouse's writer.lock): its fd.

    WriterBusy when another process holds it. Released by :func:`release_lock` or exit.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WriterBusy(f"another process is writing the warehouse at {path.parent}") from None
    return fd


def release_lock(fd: int) -> None:
    """Give up a lock taken by :func:`take_lock`."""
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class Writer:
    """Exclusive writer of one warehouse directory (held through an flock)."""

    def __init__(self, root: Path | str, *, grace_s: float = DEFAULT_GRACE_S,
                 memory_limit: str = "1GB", threads: int | None = None, delta_compression: str = "zstd") -> None:
        self.root = Path(root)
        # Codec of the delta files; base files are always zstd. A rebuild's partitions write
        # snappy: their deltas are read once, by the final compaction (a third of zstd's CPU).
        if delta_compression not in ("zstd", "snappy"):
            raise ValueError(f"delta_compression must be zstd or snappy, not {delta_compression!r}")
        self.delta_compression = delta_compression
        self.root.mkdir(parents=True, exist_ok=True)
        self.grace_s = grace_s
        self._lock_fd = take_lock(self.root / LOCK)
        self._db = duck.connect(memory_limit=memory_limit, threads=threads,
                                temp_directory=str(self.root / ".spill"))
        self._mutex = threading.RLock()
        self._pending: set[str] = set()  # written, not yet published: never swept
        self._gone: set[str] = set()  # retired files already deleted
        self._manifest = load_manifest(self.root) or Manifest(duckdb_version=duckdb.__version__)
        self._delta = DeltaPublisher(self.root)
        if self._manifest.seq:  # a crash between a manifest and its Delta commit is repaired here
            self._publish_delta(self._manifest)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def manifest(self) -> Manifest:
        """The last published manifest."""
        return self._manifest

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB cursor of the writer's in-memory database (one per thread)."""
        return self._db.cursor()

    def write_file(self, con: duckdb.DuckDBPyConnection, table: str, query: str,
                   params: Iterable[object] = (), *, kind: str = "delta",
                   partition: str = "", keep_empty: bool = False) -> DataFile | None:
        """Write the rows of ``query`` (the table's columns) as one sorted durable file.

        The file is not visible until :meth:`publish`; returns None for no rows.
        """
        spec = rollups.spec_of(table)
        rel = f"SELECT {schema.select_list(spec)} FROM ({query}) ORDER BY {spec.sort}"
        rel_path = new_file_path(table, kind, partition)
        final = self.root / rel_path
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path_for(final)
        options = f"FORMAT parquet, COMPRESSION {self.delta_compression if kind == 'delta' else 'zstd'}"
        if spec.row_group_size:
            options += f", ROW_GROUP_SIZE {int(spec.row_group_size)}"
        rows = con.execute(f"COPY ({rel}) TO ? ({options})", [*params, str(tmp)]).fetchall()[0][0]
        if rows == 0 and not keep_empty:
            tmp.unlink(missing_ok=True)
            return None
        ts_max, labels = con.execute(
            f"SELECT epoch_us(max({spec.time_column})), list(DISTINCT {spec.partition} ORDER BY 1) "
            "FROM read_parquet(?)", [str(tmp)]).fetchall()[0]
        offsets = _kafka_offsets(con, spec, tmp) if kind == "delta" else ()
        fsync_file(tmp)
        # Size and checksum let readers and the scrub tell a damaged file (integrity.py).
        size, crc = tmp.stat().st_size, file_crc32c(tmp)
        with self._mutex:
            self._pending.add(rel_path)
        os.replace(tmp, final)
        fsync_dir(final.parent)
        return DataFile(rel_path, kind, partition, rows, ts_max, tuple(labels or ()), now_us(),
                        size=size, crc32c=crc, kafka_offsets=offsets)

    def publish(self, add: Iterable[DataFile] = (), remove: Iterable[str] = (),
                offsets: Mapping[str, Mapping[int, int]] | None = None,
                quarantined: Iterable[Quarantined] = ()) -> Manifest:
        """Atomically publish a manifest with files added/removed and offsets advanced.

        Removed paths are retired (deleted by :meth:`collect_garbage` after the grace period);
        ``quarantined`` files (already moved away, quarantine.py) are unlisted and recorded.
        """
        with self._mutex:
            current = self._manifest
            quarantined = tuple(quarantined)
            removed = set(remove)
            unlisted = removed | {q.path for q in quarantined}
            files = {t: [f for f in fs if f.path not in unlisted] for t, fs in current.files.items()}
            for data_file in add:
                files.setdefault(table_of(data_file.path), []).append(data_file)
            stamp = now_us()
            retired = [r for r in current.retired if r.path not in self._gone]
            retired += [Retired(p, stamp) for p in sorted(removed)]
            merged = {t: dict(parts) for t, parts in current.offsets.items()}
            for topic, parts in (offsets or {}).items():
                known = merged.setdefault(topic, {})
                for partition, offset in parts.items():  # positions never move backwards
                    known[partition] = max(offset, known.get(partition, 0))
            manifest = replace(current, seq=current.seq + 1, published_at_us=stamp,
                               duckdb_version=duckdb.__version__,
                               files={t: tuple(fs) for t, fs in files.items()},
                               offsets=merged, retired=tuple(retired),
                               quarantined=current.quarantined + quarantined)
            publish_manifest(self.root, manifest)
            self._manifest = manifest
            self._gone.clear()
            self._pending.difference_update(f.path for f in add)
            self._publish_delta(manifest)
            return manifest

    def _publish_delta(self, manifest: Manifest) -> None:
        """Bring the tables' Delta logs (delta_log.py) to the manifest's base files.

        A failure (a full disk) stops nothing: the writer's own readers do not use the logs,
        and the next publication compares and commits again.
        """
        try:
            self._delta.sync(manifest, now_us() // 1000)
        except Exception:  # noqa: BLE001 - external readers lag; the sink must go on
            log.exception("the Delta logs for external engines were not updated; retried at the "
                          "next publication")
            self._delta = DeltaPublisher(self.root)  # re-read what is on disk next time

    def write(self, batch: Batch) -> Manifest:
        """Write each non-empty table of ``batch`` as a delta file, then publish with its offsets."""
        con = self.cursor()
        added: list[DataFile] = []
        try:
            for table, rows in batch.tables.items():
                con.register("batch_rows", rows)
                data_file = self.write_file(con, table, "SELECT * FROM batch_rows")
                con.unregister("batch_rows")
                if data_file is not None:
                    added.append(data_file)
        finally:
            con.close()
        return self.publish(add=added, offsets=batch.offsets)

    def write_partitions(self, con: duckdb.DuckDBPyConnection, table: str, source: str,
                         labels: Iterable[str]) -> list[DataFile]:
        """Write one base file per partition label from the rows of ``source`` (a table name).

        For ``cdrs``, each partition's rollups (rollups.py) and call index (call_index.py)
        are written alongside.
        """
        spec = schema.TABLES[table]
        written = []
        for label in labels:
            query = f"SELECT * FROM {schema.quote(source)} WHERE {spec.partition} = ?"
            data_file = self.write_file(con, table, query, [label], kind="base", partition=label)
            if data_file is None:
                continue
            written.append(data_file)
            if table != "cdrs":
                continue
            for rollup in rollups.ROLLUPS:
                # Kept even when empty: "no recordings this month" differs from "no rollup".
                written.append(self.write_file(con, rollup.name, rollup.select(f"({query})"), [label],
                                               kind="base", partition=label, keep_empty=True))
            written.append(self.write_file(con, call_index.NAME, call_index.select(f"({query})"), [label],
                                           kind="base", partition=label, keep_empty=True))
        return written

    def partition_files(self, table: str, labels: Iterable[str]) -> list[str]:
        """Paths of the base files (and rollups) of ``table`` in the partitions ``labels``."""
        wanted = set(labels)
        names = ((table, *(r.name for r in rollups.ROLLUPS), call_index.NAME) if table == "cdrs"
                 else (table,))
        return [f.path for name in names for f in self._manifest.table_files(name, "base")
                if f.partition in wanted]

    def load_base(self, table: str, con: duckdb.DuckDBPyConnection, source: str) -> Manifest:
        """Bulk-load ``source`` (deduplicated rows) as the base of ``table``, replacing it."""
        spec = schema.TABLES[table]
        labels = [row[0] for row in con.execute(
            f"SELECT DISTINCT {spec.partition} FROM {schema.quote(source)} ORDER BY 1").fetchall()]
        written = self.write_partitions(con, table, source, labels)
        old_labels = {f.partition for f in self._manifest.table_files(table, "base")}
        return self.publish(add=written, remove=self.partition_files(table, old_labels))

    def collect_garbage(self) -> int:
        """Delete retired files older than the grace period and orphans of crashed writes."""
        cutoff = now_us() - int(self.grace_s * 1_000_000)
        deleted = 0
        with self._mutex:
            for retired in self._manifest.retired:
                if retired.retired_at_us <= cutoff and retired.path not in self._gone:
                    (self.root / retired.path).unlink(missing_ok=True)
                    self._gone.add(retired.path)
                    deleted += 1
            keep = self._manifest.referenced() | self._pending
            keep |= {r.path for r in self._manifest.retired}
        return deleted + self._sweep_orphans(keep, cutoff / 1_000_000)

    def _sweep_orphans(self, keep: set[str], cutoff_s: float) -> int:
        deleted = 0
        data = self.root / DATA
        if not data.is_dir():
            return 0
        for path in data.rglob("*"):
            rel = path.relative_to(self.root).as_posix()
            if not path.is_file() or rel in keep or f"/{LOG_DIR}/" in rel:
                continue
            try:
                if path.stat().st_mtime <= cutoff_s:
                    path.unlink()
                    deleted += 1
            except FileNotFoundError:
                pass
        return deleted

    def close(self) -> None:
        """Release DuckDB and the writer lock."""
        if self._lock_fd is None:
            return
        self._db.close()
        release_lock(self._lock_fd)
        self._lock_fd = None
