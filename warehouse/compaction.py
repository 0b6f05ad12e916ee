"""Compaction: keep the number of files small and the base deduplicated.

Runs inside the writing process (the sink, or a rebuild), through the same
:class:`~warehouse.writer.Writer`, so there is still one writer.

- *minor*: once a table has ``minor_files`` recent delta files of similar
  size, merge them into one (deduplicated by the table's winner rule). Cheap;
  keeps readers from opening hundreds of small files, and size tiers keep a
  merged file from being rewritten at every merge.
- *complete*: at start, the rollups a warehouse written by an older version lacks
  (quarantine.write_derived), once.
- *major*: once the deltas hold ``major_rows`` rows or the oldest is
  ``major_age_s`` old, fold them into the base: every base partition that a
  delta row falls in, or that holds an older row of a delta key (a call whose
  ``started_at`` changed month), is rewritten as one sorted file of winners.
  The key scan over the whole base makes this exact whatever the readers'
  shortcut (views.py) assumed.

Published like any write: new files first, then one manifest that swaps them
in and retires the old ones (deleted after the grace period).

A damaged input never stops compaction: inputs are checksummed before their
first use, and a compaction that fails anyway has its inputs decoded one by
one; a damaged file is quarantined (quarantine.py) and the rest is compacted
at the next look. A compaction that fails for another reason (a full disk) is
retried after a delay that doubles per failure, up to ``backoff_max_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

import duckdb

from warehouse import quarantine, schema
from warehouse.integrity import Verifier, first_line
from warehouse.layout import DataFile, Manifest
from warehouse.views import literal
from warehouse.writer import Writer, now_us

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompactionPolicy:
    """When to merge deltas (minor) and fold them into the base (major)."""

    minor_files: int = 8
    major_rows: int = 1_000_000
    major_age_s: float = 120.0
    # A major rewrites the current month: during a catch-up at tens of thousands of CDRs/s,
    # folding every few seconds would keep both cores busy rewriting it.
    major_interval_s: float = 60.0
    interval_s: float = 0.5  # how often the compactor thread looks
    gc_interval_s: float = 10.0
    # After a failed compaction of a table (not a damaged file: those are quarantined), wait
    # backoff_s, doubled per further failure up to backoff_max_s, before trying that table again.
    backoff_s: float = 1.0
    backoff_max_s: float = 300.0
    # The scrub (quarantine.Scrubber): every file's size this often, each checksum once an hour,
    # at most scrub_bytes of checksums per round.
    scrub_interval_s: float = 30.0
    scrub_recheck_s: float = 3600.0
    scrub_bytes: int = 256 * 1024 * 1024


def _paths(writer: Writer, files: list[DataFile] | tuple[DataFile, ...]) -> str:
    return "[" + ", ".join(literal(str(writer.root / f.path)) for f in files) + "]"


def _dedup_sql(spec: schema.TableSpec, source: str) -> str:
    return (f"SELECT {schema.select_list(spec)} FROM {source} "
            f"QUALIFY row_number() OVER (PARTITION BY {schema.key_list(spec)} ORDER BY {spec.winner}) = 1")


def tier(deltas: tuple[DataFile, ...] | list[DataFile]) -> list[DataFile]:
    """The newest delta files of similar size: what a minor merge takes.

    Walking from the newest file back, a file more than twice as big as everything
    newer stays (it was merged before): merged rows are rewritten O(log n) times,
    not at every merge.
    """
    newest_first = sorted(deltas, key=lambda f: f.created_us, reverse=True)
    taken, rows = [], 0
    for data_file in newest_first:
        if taken and data_file.rows > 2 * rows:
            break
        taken.append(data_file)
        rows += data_file.rows
    return taken


def minor(writer: Writer, table: str) -> bool:
    """Merge the newest delta files of ``table`` (see :func:`tier`) into one; False if < 2."""
    deltas = tier(writer.manifest.table_files(table, "delta"))
    if len(deltas) < 2:
        return False
    spec = schema.TABLES[table]
    con = writer.cursor()
    try:
        merged = writer.write_file(con, table, _dedup_sql(spec, schema.scan(spec, _paths(writer, deltas))))
    finally:
        con.close()
    if merged is not None:
        # The merge keeps the age of its oldest input, or minor merges would postpone majors forever.
        merged = replace(merged, created_us=min(f.created_us for f in deltas))
    writer.publish(add=[merged] if merged else [], remove=[f.path for f in deltas])
    return True


def major(writer: Writer, table: str) -> bool:
    """Fold all current delta files of ``table`` into its base; False if there are none."""
    manifest = writer.manifest
    deltas = manifest.table_files(table, "delta")
    if not deltas:
        return False
    spec = schema.TABLES[table]
    base = manifest.table_files(table, "base")
    con = writer.cursor()
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE c_delta AS "
                    f"{_dedup_sql(spec, schema.scan(spec, _paths(writer, deltas)))}")
        affected = _affected_base(writer, con, spec, base, deltas)
        rows = "c_delta"  # already one row per key: merged again only with base rows
        if affected:
            source = (f"SELECT * FROM c_delta UNION ALL SELECT {schema.select_list(spec)} "
                      f"FROM {schema.scan(spec, _paths(writer, affected))}")
            con.execute(f"CREATE OR REPLACE TEMP TABLE c_rows AS {_dedup_sql(spec, f'({source})')}")
            rows = "c_rows"
        labels = [r[0] for r in con.execute(
            f"SELECT DISTINCT {spec.partition} FROM {rows} ORDER BY 1").fetchall()]
        written = writer.write_partitions(con, table, rows, labels)
        con.execute("DROP TABLE IF EXISTS c_rows")
        con.execute("DROP TABLE c_delta")
    finally:
        con.close()
    rewritten = set(labels) | {f.partition for f in affected}
    writer.publish(add=written, remove=[f.path for f in deltas] + writer.partition_files(table, rewritten))
    return True


def _affected_base(writer: Writer, con: duckdb.DuckDBPyConnection, spec: schema.TableSpec,
                   base: tuple[DataFile, ...], deltas: tuple[DataFile, ...]) -> list[DataFile]:
    """Base files to rewrite: the deltas' partitions and any file holding a delta key."""
    if not base:
        return []
    labels = {label for f in deltas for label in f.labels}
    hit = {row[0] for row in con.execute(
        f"SELECT DISTINCT b.filename FROM {schema.scan(spec, _paths(writer, base), filename=True)} b "
        f"SEMI JOIN c_delta d USING ({schema.key_list(spec)})").fetchall()}
    return [f for f in base if f.partition in labels or str(writer.root / f.path) in hit]


def due(manifest: Manifest, table: str, policy: CompactionPolicy, now: int) -> str | None:
    """"major", "minor" or None: what the policy asks for ``table`` at ``now`` (UTC µs)."""
    deltas = manifest.table_files(table, "delta")
    if not deltas:
        return None
    oldest = min(f.created_us for f in deltas)
    last_major = max((f.created_us for f in manifest.table_files(table, "base")), default=0)
    if ((sum(f.rows for f in deltas) >= policy.major_rows or now - oldest >= policy.major_age_s * 1e6)
            and now - last_major >= policy.major_interval_s * 1e6):
        return "major"
    return "minor" if len(tier(deltas)) >= policy.minor_files else None


def compact_due(writer: Writer, policy: CompactionPolicy) -> list[str]:
    """Run every compaction the policy asks for; returns what was done ("major cdrs", ...)."""
    return [done for table in schema.TABLES if (done := compact_table(writer, table, policy))]


def compact_table(writer: Writer, table: str, policy: CompactionPolicy) -> str | None:
    """Run the compaction ``table`` is due for, if any; what was done ("minor alerts") or None."""
    action = due(writer.manifest, table, policy, now_us())
    if (action == "major" and major(writer, table)) or (action == "minor" and minor(writer, table)):
        return f"{action} {table}"
    return None


def compact_all(writer: Writer) -> None:
    """Fold every delta of every table into the base (end of a rebuild, tests)."""
    for table in schema.TABLES:
        major(writer, table)


class Compactor(threading.Thread):
    """Background thread of the writing process: compaction, garbage collection and the scrub."""

    def __init__(self, writer: Writer, policy: CompactionPolicy) -> None:
        super().__init__(name="compactor", daemon=True)
        self.writer = writer
        self.policy = policy
        self.stopping = threading.Event()
        self.failures: dict[str, int] = {}  # table -> compactions failed in a row
        self._retry_at: dict[str, float] = {}  # table -> monotonic time of its next attempt
        self._verifier = Verifier()
        self._scrubber = quarantine.Scrubber(recheck_s=policy.scrub_recheck_s, budget_bytes=policy.scrub_bytes)

    def run(self) -> None:
        self._guarded("missing rollups", self._complete_derived)
        last_gc = last_scrub = time.monotonic()
        while not self.stopping.wait(self.policy.interval_s):
            for table in schema.TABLES:
                if self._retry_at.get(table, 0.0) <= time.monotonic():
                    self._compact(table)
            if time.monotonic() - last_gc >= self.policy.gc_interval_s:
                self._guarded("garbage collection", self._collect_garbage)
                last_gc = time.monotonic()
            if time.monotonic() - last_scrub >= self.policy.scrub_interval_s:
                self._guarded("scrub", lambda: self._scrubber.round(self.writer))
                last_scrub = time.monotonic()

    def _complete_derived(self) -> None:
        """Write the rollups a warehouse made by an older version lacks (its partitions are read
        from the calls until then), one file per publish, before the first compaction."""
        missing = quarantine.missing_derived(self.writer.manifest)
        if missing:
            log.info("writing %d missing rollup or index files", len(missing))
            done = quarantine.write_derived(self.writer, missing, each=True, stop=self.stopping.is_set)
            log.info("wrote %d missing rollup or index files", done)

    def _compact(self, table: str) -> None:
        """One look at ``table``: quarantine damaged inputs first, then compact; back off on failure."""
        try:
            if due(self.writer.manifest, table, self.policy, now_us()) is None:
                return
            if self._quarantine_damaged(table, decode=False):
                return  # the rest of the table is compacted at the next look
            done = compact_table(self.writer, table, self.policy)
            if done:
                log.info("compaction: %s", done)
            self.failures.pop(table, None)
            self._retry_at.pop(table, None)
        except Exception as exc:  # noqa: BLE001 - a failed compaction must not stop the sink
            self._failed(table, exc)

    def _failed(self, table: str, exc: Exception) -> None:
        try:
            damaged = self._quarantine_damaged(table, decode=True)
        except Exception:  # noqa: BLE001 - the diagnosis itself may hit what broke the compaction
            log.exception("compaction of %s: checking its files failed too", table)
            damaged = False
        if damaged:
            self.failures.pop(table, None)
            self._retry_at.pop(table, None)
            return
        failures = self.failures.get(table, 0) + 1
        self.failures[table] = failures
        delay = min(self.policy.backoff_max_s, self.policy.backoff_s * 2 ** (failures - 1))
        self._retry_at[table] = time.monotonic() + delay
        log.warning("compaction of %s failed (attempt %d: %s); next attempt in %.1f s, the sink keeps "
                    "writing deltas meanwhile", table, failures, first_line(exc), delay,
                    exc_info=failures == 1)

    def _quarantine_damaged(self, table: str, *, decode: bool) -> bool:
        """Check the files a compaction of ``table`` reads (once each); quarantine the damaged ones.

        Without ``decode`` only sizes and checksums are compared; with it, files without a
        checksum are decoded in full (after a compaction failed on one of them).
        """
        con = self.writer.cursor() if decode else None
        try:
            problems = {}
            for data_file in self.writer.manifest.table_files(table):
                problem = self._verifier.thorough(self.writer.root, data_file, con)
                if problem:
                    problems[data_file.path] = problem
        finally:
            if con is not None:
                con.close()
        if problems:
            quarantine.quarantine(self.writer, problems)
        return bool(problems)

    def _collect_garbage(self) -> None:
        deleted = self.writer.collect_garbage()
        if deleted:
            log.info("garbage collection: %d files deleted", deleted)
        self._verifier.retain(self.writer.manifest.referenced())

    @staticmethod
    def _guarded(what: str, step) -> None:
        try:
            step()
        except Exception:  # noqa: BLE001 - neither may stop the sink; each is tried again later
            log.exception("%s failed; tried again at its next interval", what)

    def stop(self) -> None:
        """Ask the thread to finish its current step and exit; waits for it."""
        self.stopping.set()
        self.join()
