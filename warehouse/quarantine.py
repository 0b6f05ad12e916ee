"""Damaged files out of the warehouse: a quarantine, a note, and a manifest without them.

Only the writer (the sink's compactor thread, or a rebuild) calls this. A file
found damaged (integrity.py) — by the scrub, which checks every listed file's
size each round and its checksum once an hour, or by a compaction that fails
on it — is:

1. moved to ``<warehouse>/quarantine/<table>.<name>.parquet`` (kept for
   inspection; nothing reads it), unless it is already gone;
2. described by a note beside it, ``<table>.<name>.json``: why, when, and what
   it held (table, kind, partition, rows, the Kafka offsets of a delta's rows)
   and how to get the rows back;
3. unlisted by one new manifest, which records it under ``quarantined`` (the
   dashboard's warning and the export's refusal read that list).

The rows of a damaged ``cdrs``/``alerts``/``events``/``dlq`` file are gone from
the warehouse but not from Kafka; ``callstream rebuild`` replays the event log
into a new generation that has them (and an empty quarantine list). A damaged
rollup or call index loses nothing: it is written again at once from its base
file.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from warehouse import call_index, rollups
from warehouse.integrity import stat_problem, thorough_problem
from warehouse.layout import QUARANTINE, DataFile, Manifest, Quarantined, fsync_dir, table_of
from warehouse.views import literal
from warehouse.writer import Writer, now_us

log = logging.getLogger(__name__)

RECOVERY = ("The rows of this file are no longer in the warehouse; they are still in Kafka. Stop the sink "
            "and run `callstream rebuild`: it replays the event log into a new warehouse generation that "
            "has them, and swaps it in. Until then the dashboard shows a warning and `callstream export` "
            "refuses the months this file held (unless --allow-incomplete).")
DERIVED_RECOVERY = "Derived from a base file of cdrs and written again from it: no data was lost."

# Derived files of one cdrs base partition: name -> SQL of its rows from a source of cdrs rows.
DERIVED = {**{r.name: r.select for r in rollups.ROLLUPS}, call_index.NAME: call_index.select}


def _move(root: Path, data_file: DataFile, reason: str) -> Quarantined:
    """Move one file into the quarantine with its note; the entry the manifest records."""
    folder = root / QUARANTINE
    folder.mkdir(exist_ok=True)
    stem = f"{table_of(data_file.path)}.{Path(data_file.path).stem}"
    moved_to: str | None = f"{QUARANTINE}/{stem}.parquet"
    try:
        os.rename(root / data_file.path, root / moved_to)
    except FileNotFoundError:
        moved_to = None
    entry = Quarantined(data_file.path, moved_to, table_of(data_file.path), data_file.kind, data_file.partition,
                        data_file.rows, reason, now_us(), data_file.labels, data_file.kafka_offsets)
    note = {**entry.__dict__, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.at_us / 1e6)),
            "size": data_file.size, "crc32c": data_file.crc32c,
            "recovery": DERIVED_RECOVERY if entry.table in DERIVED else RECOVERY}
    target = folder / f"{stem}.json"
    tmp = folder / f".{stem}.json.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(note, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    fsync_dir(folder)
    return entry


def quarantine(writer: Writer, problems: Mapping[str, str]) -> list[Quarantined]:
    """Quarantine the listed files of ``problems`` (path -> reason) and publish once; their entries.

    A damaged base file of ``cdrs`` takes its partition's rollups and index out of the manifest
    with it (they describe rows that are no longer there); a damaged rollup or index is written
    again from its base file.
    """
    listed = {f.path: f for f in writer.manifest.all_files()}
    entries = [_move(writer.root, listed[path], reason) for path, reason in sorted(problems.items())
               if path in listed]
    if not entries:
        return []
    lost_bases = {e.partition for e in entries if e.table == "cdrs" and e.kind == "base"}
    companions = [p for p in writer.partition_files("cdrs", lost_bases)
                  if table_of(p) in DERIVED and p not in problems]
    writer.publish(remove=companions, quarantined=entries)
    for entry in entries:
        log.error("warehouse file quarantined: %s (%s, %d rows of %s) -> %s", entry.path, entry.reason,
                  entry.rows, entry.table, entry.moved_to or "(already gone)")
    _rewrite_derived(writer, [e for e in entries if e.table in DERIVED])
    return entries


def _rewrite_derived(writer: Writer, entries: Iterable[Quarantined]) -> None:
    """Write a quarantined rollup or index again from the cdrs base file of its partition."""
    write_derived(writer, [(e.table, e.partition) for e in entries])


def missing_derived(manifest: Manifest) -> list[tuple[str, str]]:
    """(rollup or index, partition) of every cdrs base partition that lacks it: a warehouse written
    before that rollup existed (views.py reads such a partition's calls instead, correct but slower)."""
    present = {(table_of(f.path), f.partition) for f in manifest.all_files()}
    return [(table, f.partition) for f in manifest.table_files("cdrs", "base") for table in DERIVED
            if (table, f.partition) not in present]


def write_derived(writer: Writer, wanted: Iterable[tuple[str, str]], *, each: bool = False,
                  stop: Callable[[], bool] = lambda: False) -> int:
    """Write the rollups or indexes ``wanted`` ((table, partition) pairs) from the cdrs base files of
    their partitions, and publish them (``each``: one publish per file, progress kept; ``stop``
    asked before each file); how many."""
    bases = {f.partition: f for f in writer.manifest.table_files("cdrs", "base")}
    present = {(table_of(f.path), f.partition) for f in writer.manifest.all_files()}
    written, count = [], 0
    con = writer.cursor()
    try:
        for table, partition in wanted:
            if stop():
                break
            base = bases.get(partition)
            if base is None or (table, partition) in present:
                continue  # its base is gone too, or a compaction already wrote a new one
            if thorough_problem(writer.root, base) is not None:
                continue  # the scrub will quarantine the base itself
            source = f"(SELECT * FROM read_parquet({literal(str(writer.root / base.path))}))"
            written.append(writer.write_file(con, table, DERIVED[table](source), kind="base",
                                             partition=partition, keep_empty=True))
            count += 1
            if each:
                _publish_unless_replaced(writer, written)
                written = []
    finally:
        con.close()
    _publish_unless_replaced(writer, written)
    return count


def _publish_unless_replaced(writer: Writer, files: list) -> None:
    """Publish derived files whose base is still the one they were written from (a compaction
    that rewrote the partition meanwhile wrote its own)."""
    if not files:
        return
    current = {(table_of(f.path), f.partition) for f in writer.manifest.all_files()}
    bases = {f.partition for f in writer.manifest.table_files("cdrs", "base")}
    keep = [f for f in files if f.partition in bases and (table_of(f.path), f.partition) not in current]
    if keep:
        writer.publish(add=keep)


class Scrubber:
    """Finds damaged files while the writer runs: every file's size each round, its checksum hourly.

    Checksums are read at most ``budget_bytes`` per round (None: no limit), the files least
    recently checked first, so a large warehouse is covered over a few rounds without a burst.
    """

    def __init__(self, *, recheck_s: float = 3600.0, budget_bytes: int | None = 256 * 1024 * 1024) -> None:
        self.recheck_s = recheck_s
        self.budget_bytes = budget_bytes
        self._checked_at: dict[str, float] = {}

    def round(self, writer: Writer) -> list[Quarantined]:
        """One pass: quarantine what is damaged; the entries quarantined."""
        files = writer.manifest.all_files()
        listed = {f.path for f in files}
        self._checked_at = {p: t for p, t in self._checked_at.items() if p in listed}  # bounded
        now = time.monotonic()
        due = sorted((f for f in files if now - self._checked_at.get(f.path, float("-inf")) >= self.recheck_s),
                     key=lambda f: self._checked_at.get(f.path, float("-inf")))
        problems, spent = {}, 0
        for data_file in due:
            if self.budget_bytes is not None and spent >= self.budget_bytes:
                break
            problem = thorough_problem(writer.root, data_file)
            spent += data_file.size or 0
            self._checked_at[data_file.path] = now
            if problem:
                problems[data_file.path] = problem
        for data_file in files:  # the cheap check for every file, every round
            if data_file.path not in problems:
                problem = stat_problem(writer.root, data_file)
                if problem:
                    problems[data_file.path] = problem
        return quarantine(writer, problems)


def scrub(writer: Writer) -> list[Quarantined]:
    """Check every file of the warehouse now (size and checksum) and quarantine the damaged ones."""
    return Scrubber(budget_bytes=None).round(writer)
