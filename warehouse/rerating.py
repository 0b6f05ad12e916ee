"""The re-rating report of a rebuild: which calls' cost changed, and by how much in total.

Every call of the rebuilt warehouse is compared with the same call in the live
one (both read through :class:`~warehouse.reader.Reader`, latest versions). A
call's cost *changed* when the amount differs, or when a non-zero amount is
now in another currency. For each such call the CSV lists its old and new
region, currency and cost and the difference (empty when a non-zero cost
changed currency: the two amounts do not subtract). Totals are per currency:
by region and by portal, each group gets the new cost of the changed calls
now rated in it, minus the old cost of those rated in it before — so when
region and currency did not change, a group's difference is
``SUM(new - old)`` over its calls. All money is ``Decimal`` (DuckDB
``DECIMAL``), never float. Calls present on one side only (a live warehouse
lagging behind the log, or a log shortened by retention) are counted apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from warehouse.layout import fsync_file
from warehouse.reader import Reader

_REBUILT = "SELECT call_id, portal_id, region, cost, currency FROM cdrs"
_CHANGED = """
CREATE OR REPLACE TEMP TABLE changed AS
SELECT n.call_id, n.portal_id, n.region, n.currency, o.cost AS old_cost, n.cost AS new_cost,
       CASE WHEN o.currency IS NOT DISTINCT FROM n.currency OR o.cost = 0 OR n.cost = 0
            THEN n.cost - o.cost END AS difference,
       o.region AS old_region, o.currency AS old_currency, o.portal_id AS old_portal_id
FROM {old} o JOIN {new} n USING (call_id)
WHERE o.cost IS DISTINCT FROM n.cost OR (o.cost <> 0 AND o.currency IS DISTINCT FROM n.currency)
"""
# Each changed call adds its new cost to its new group and takes its old cost from its old one.
_SIDES = """
SELECT call_id, {new} AS key, currency, CAST(0 AS DECIMAL(18,2)) AS old, new_cost AS new
FROM changed WHERE new_cost <> 0
UNION ALL
SELECT call_id, {old} AS key, old_currency, old_cost, CAST(0 AS DECIMAL(18,2)) FROM changed
WHERE old_cost <> 0
"""
_TOTALS = ("SELECT key, currency, count(DISTINCT call_id), sum(old), sum(new), sum(new) - sum(old) "
           "FROM ({sides}) GROUP BY ALL ORDER BY currency NULLS LAST, abs(sum(new) - sum(old)) DESC, key")
CSV_COLUMNS = ("call_id", "portal_id", "region", "currency", "old_cost", "new_cost", "difference",
               "old_region", "old_currency")


@dataclass(frozen=True)
class Total:
    """One line of a totals table: a region or portal (None for all) in one currency."""

    key: str | None
    currency: str | None
    calls: int
    old_cost: Decimal
    new_cost: Decimal
    difference: Decimal


@dataclass
class RatingReport:
    """The comparison of a rebuilt warehouse with the live one."""

    compared: int = 0  # calls in both
    changed: int = 0
    only_rebuilt: int = 0
    only_live: int = 0
    by_currency: list[Total] = field(default_factory=list)
    by_region: list[Total] = field(default_factory=list)
    by_portal: list[Total] = field(default_factory=list)


def compare(live: Path, rebuilt: Path, csv_path: Path, *, spill_dir: Path | None = None,
            memory_limit: str = "512MB") -> RatingReport:
    """Compare the calls of ``rebuilt`` with ``live``; the changed calls go to ``csv_path``."""
    spill = str(spill_dir) if spill_dir else None
    with Reader(live, memory_limit=memory_limit, temp_directory=spill) as old, \
            Reader(rebuilt, memory_limit=memory_limit, temp_directory=spill) as new, \
            old.cursor() as con, new.cursor() as new_con:
        # The two warehouses are two in-memory databases: stream one side into the other.
        con.register("rebuilt_stream", new_con.sql(_REBUILT).fetch_record_batch(100_000))
        con.execute("CREATE TEMP TABLE rebuilt AS SELECT * FROM rebuilt_stream")
        con.unregister("rebuilt_stream")
        return compare_tables(con, "cdrs", "rebuilt", csv_path)


def compare_tables(con, old: str, new: str, csv_path: Path) -> RatingReport:
    """The report over two relations of ``con`` (call_id, portal_id, region, cost, currency).

    ``old`` and ``new`` are names chosen by this package, never user input. The CSV is
    written atomically (temporary file, fsync, rename).
    """
    con.execute(_CHANGED.format(old=old, new=new))
    report = RatingReport()
    report.compared, report.only_live, report.only_rebuilt = con.execute(
        "SELECT count(o.call_id) FILTER (n.call_id IS NOT NULL), count(o.call_id) FILTER "
        f"(n.call_id IS NULL), count(n.call_id) FILTER (o.call_id IS NULL) FROM "
        f"(SELECT call_id FROM {old}) o FULL JOIN (SELECT call_id FROM {new}) n USING (call_id)"
    ).fetchone()
    report.changed = con.execute("SELECT count(*) FROM changed").fetchone()[0]
    report.by_currency = _totals(con, "NULL", "NULL")
    report.by_region = _totals(con, "region", "old_region")
    report.by_portal = _totals(con, "portal_id", "old_portal_id")
    _write_csv(con, csv_path)
    return report


def _totals(con, new_key: str, old_key: str) -> list[Total]:
    sides = _SIDES.format(new=new_key, old=old_key)  # column names of this module, never input
    return [Total(*row) for row in con.execute(_TOTALS.format(sides=sides)).fetchall()]


def _write_csv(con, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    columns = ", ".join(CSV_COLUMNS)
    con.execute(f"COPY (SELECT {columns} FROM changed ORDER BY call_id) TO ? (HEADER, DELIMITER ',')",
                [str(tmp)])
    fsync_file(tmp)
    os.replace(tmp, path)


def _money(value: Decimal, signed: bool = False) -> str:
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def _table(title: str, name: str, totals: list[Total], limit: int | None) -> list[str]:
    shown = totals if limit is None else totals[:limit]
    lines = [title, f"  {name:<28} {'currency':<8} {'calls':>8} {'old cost':>16} {'new cost':>16} "
                    f"{'difference':>16}"]
    for t in shown:
        key = t.key if t.key is not None else "(no tariff row)"
        lines.append(f"  {key[:28]:<28} {t.currency or '-':<8} {t.calls:>8,} {_money(t.old_cost):>16} "
                     f"{_money(t.new_cost):>16} {_money(t.difference, True):>16}")
    if len(totals) > len(shown):
        lines.append(f"  ... {len(totals) - len(shown)} more in the saved report")
    return lines


def render(report: RatingReport, header: list[str], limit: int | None = None) -> str:
    """The report as text: ``header`` lines, counts, then the totals tables (``limit`` rows each)."""
    lines = list(header)
    lines.append(f"calls compared: {report.compared:,}; cost changed: {report.changed:,}; "
                 f"only in the rebuild: {report.only_rebuilt:,}; only in the live warehouse: "
                 f"{report.only_live:,}")
    if report.changed:
        totals = [Total("all calls", t.currency, t.calls, t.old_cost, t.new_cost, t.difference)
                  for t in report.by_currency]
        for title, name, rows in (("Difference, all calls", "", totals),
                                  ("Difference by region", "region", report.by_region),
                                  ("Difference by portal", "portal", report.by_portal)):
            lines += [""] + _table(title, name, rows, limit)
    return "\n".join(lines) + "\n"
