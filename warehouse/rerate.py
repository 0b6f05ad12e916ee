"""``callstream rerate``: re-rate a period's CDRs in the warehouse, without replaying events.

Rating needs only fields every CDR keeps (rerate_sql.py reproduces the
domain core's rating in DuckDB SQL). A re-rating is a new generation of the
warehouse, swapped in like a rebuild's (generations.py), so readers never see
it half done and the previous generation is kept for comparison:

1. take the live warehouse's lock (a running sink makes the rerate refuse);
2. the new generation starts as hard links to every file the live manifest
   lists (Parquet files are never modified in place, so sharing them is
   safe), with the same offsets (a sink started on it continues where the
   live one stopped);
3. the cdrs deltas are folded into the base (compaction.major): each call is
   then in exactly one base file, one per month of ``started_at``;
4. the month partitions that hold calls started in the period (UTC days
   ``from`` to ``to``, both included) are rewritten: every call of the period
   gets the rating of the tariffs, every other call is kept as it was; the
   partitions' rollups and call index are written with them
   (``Writer.write_partitions``), and the old files retired;
5. the re-rating report (rerating.py, the rebuild's) compares the period's
   calls before and after; then the generation is swapped in (or moved to
   ``--into PATH``).

An error or Ctrl-C deletes the unfinished generation: the live warehouse is as
it was. Alerts are not re-derived (an ``unrated_call`` alert stays as the
worker raised it): a rebuild re-derives them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from streams.domain.rating import TariffTable
from warehouse import compaction, generations, rerating, schema
from warehouse.layout import fsync_dir, load_manifest
from warehouse.rebuild import RebuildError, lock_live
from warehouse.rerate_sql import load_tariff_table, rating_query
from warehouse.views import literal
from warehouse.writer import Writer, release_lock

_RATED = ("region", "rate_per_min", "rate_per_min_text", "billed_s", "cost", "cost_text", "currency")
_REPORTED = "call_id, portal_id, region, cost, currency"


class RerateError(RuntimeError):
    """The re-rating cannot be done; the live warehouse is untouched."""


@dataclass(frozen=True)
class RerateOptions:
    """The period (UTC days of ``started_at``, both included) and where things go."""

    first: date
    last: date
    into: Path | None = None  # write the re-rated warehouse there instead of swapping it in
    report_dir: Path | None = None  # default: the directory holding the warehouse


@dataclass
class RerateResult:
    """What a re-rating did."""

    calls: int  # calls of the period re-rated
    seconds: float  # the whole run
    rating_seconds: float  # the rating query alone
    location: Path
    generation: Path | None
    previous: Path | None
    report: rerating.RatingReport
    report_files: tuple[Path, ...]


def rerate(live: Path, tariffs: TariffTable, options: RerateOptions, stop=None,
           header: tuple[str, ...] = ()) -> RerateResult:
    """Re-rate the calls of ``live`` started in the period (see the module docstring)."""
    began = time.monotonic()
    if options.last < options.first:
        raise RerateError(f"--to {options.last} is before --from {options.first}")
    if load_manifest(live) is None:
        raise RerateError(f"no warehouse at {live}")
    if options.into is not None and (options.into.exists() or options.into.is_symlink()):
        raise RerateError(f"--into {options.into} already exists; give a new path")
    try:
        lock = None if options.into is not None else lock_live(live)
    except RebuildError:
        raise RerateError(f"another process (the sink?) is writing the warehouse at {live}; stop it "
                          "first, or re-rate into a new directory with --into PATH") from None
    stamp = generations.new_stamp()
    building = generations.building_dir(options.into or live, stamp)
    try:
        result = _build(live, building, tariffs, options, stop, header)
        if options.into is not None:
            generations.publish_at(building, options.into)
            result.location = options.into
        else:
            swap = generations.swap_in(building, live, stamp)
            result.location, result.generation, result.previous = live, swap.current, swap.previous
    except BaseException:
        generations.discard(building)
        raise
    finally:
        if lock is not None:
            release_lock(lock)
    result.seconds = time.monotonic() - began
    return result


def _build(live: Path, building: Path, tariffs: TariffTable, options: RerateOptions, stop,
           header: tuple[str, ...]) -> RerateResult:
    manifest = load_manifest(live)
    building.mkdir(parents=True)
    for data_file in manifest.all_files():
        target = building / data_file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(live / data_file.path, target)
    for directory in {(building / f.path).parent for f in manifest.all_files()}:
        fsync_dir(directory)
    with Writer(building, grace_s=0.0) as writer:
        writer.publish(add=manifest.all_files(), offsets=manifest.offsets)
        _check(stop)
        compaction.major(writer, "cdrs")
        _check(stop)
        con = writer.cursor()
        try:
            calls, rating_s, labels = _rate(con, writer, tariffs, options)
            _check(stop)
            if labels:
                old = writer.partition_files("cdrs", labels)  # listed before the new ones are
                written = writer.write_partitions(con, "cdrs", "rerated", labels)
                writer.publish(add=written, remove=old)
            report, files = _report(con, live, building, options, header)
        finally:
            con.close()
        writer.collect_garbage()
        writer.publish()
    return RerateResult(calls, 0.0, rating_s, building, None, None, report, files)


def _rate(con, writer: Writer, tariffs: TariffTable, options: RerateOptions) -> tuple[int, float, list[str]]:
    """Temp tables ``old_period``/``new_period`` (the period's calls before and after) and
    ``rerated`` (every row of the touched partitions, the period's re-rated); the count of
    the period's calls, the rating's seconds, the touched partition labels."""
    spec = schema.TABLES["cdrs"]
    base = writer.manifest.table_files("cdrs", "base")
    if not base:
        con.execute(f"CREATE TEMP TABLE old_period AS SELECT {_REPORTED} FROM ({schema.empty_select(spec)})")
        con.execute("CREATE TEMP TABLE new_period AS SELECT * FROM old_period")
        return 0, 0.0, []
    files = "[" + ", ".join(literal(str(writer.root / f.path)) for f in base) + "]"
    period = "started_day BETWEEN ? AND ?"
    labels = [row[0] for row in con.execute(
        f"SELECT DISTINCT {spec.partition} FROM {schema.scan(spec, files)} WHERE {period} ORDER BY 1",
        [options.first, options.last]).fetchall()]
    paths = {f.path for f in base if f.partition in set(labels)}
    touched = "[" + ", ".join(literal(str(writer.root / p)) for p in sorted(paths)) + "]" if paths else "[]"
    if not paths:
        con.execute(f"CREATE TEMP TABLE old_period AS SELECT {_REPORTED} FROM ({schema.empty_select(spec)})")
        con.execute("CREATE TEMP TABLE new_period AS SELECT * FROM old_period")
        return 0, 0.0, []
    con.execute(f"CREATE TEMP TABLE touched AS SELECT *, {period} AS in_period FROM {schema.scan(spec, touched)}",
                [options.first, options.last])
    scale = load_tariff_table(con, tariffs)
    con.execute("CREATE TEMP VIEW period_calls AS SELECT * FROM touched WHERE in_period")
    began = time.monotonic()
    con.execute(f"CREATE TEMP TABLE rating AS {rating_query('period_calls', scale, tariffs)}")
    rating_s = time.monotonic() - began
    columns = ", ".join(f"CASE WHEN t.in_period THEN r.{c} ELSE t.{c} END AS {c}" if name in _RATED
                        else f"t.{c}" for name in spec.column_names for c in [schema.quote(name)])
    con.execute(f"CREATE TEMP TABLE rerated AS SELECT {columns} FROM touched t LEFT JOIN rating r "
                "ON r.call_id = t.call_id AND t.in_period")
    con.execute(f"CREATE TEMP TABLE old_period AS SELECT {_REPORTED} FROM touched WHERE in_period")
    con.execute(f"CREATE TEMP TABLE new_period AS SELECT {_REPORTED} FROM rerated WHERE {period}",
                [options.first, options.last])
    calls = con.execute("SELECT count(*) FROM old_period").fetchall()[0][0]
    return calls, rating_s, labels


def _report(con, live: Path, building: Path, options: RerateOptions,
            header: tuple[str, ...]) -> tuple[rerating.RatingReport, tuple[Path, ...]]:
    directory = options.report_dir or live.parent
    directory.mkdir(parents=True, exist_ok=True)
    moment = datetime.now(UTC)
    base = directory / f"rerating-report-{moment:%Y%m%dT%H%M%SZ}"
    csv_path, txt_path = base.with_suffix(".csv"), base.with_suffix(".txt")
    report = rerating.compare_tables(con, "old_period", "new_period", csv_path)
    lines = [f"Re-rating report, {moment:%Y-%m-%dT%H:%M:%SZ}", *header,
             f"calls started {options.first} to {options.last} (UTC), re-rated from the warehouse's CDRs",
             f"warehouse: {live}", f"changed calls: {csv_path.name}", ""]
    tmp = txt_path.with_name(f".{txt_path.name}.tmp")
    tmp.write_text(rerating.render(report, lines), encoding="utf-8")
    tmp.replace(txt_path)
    return report, (txt_path, csv_path)


def _check(stop) -> None:
    if stop is not None and stop.is_set():
        raise KeyboardInterrupt


__all__ = ["RerateError", "RerateOptions", "RerateResult", "rerate"]
