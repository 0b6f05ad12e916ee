"""Per-day aggregates of ``cdrs`` that the dashboard's charts read instead of the calls.

Each rollup is stored as one file per base partition of ``cdrs``, written with
it (writer.py) by the compactor or a bulk load; views.py adds the pieces the
deltas change, so a rollup is exact at any moment. Every measure is a count
or a sum, which is what makes those pieces additive (and a piece may be
negative: queries sum rollup rows and never filter on a measure).

- ``cdrs_daily``: per day, portal, line, direction, status, controller
  verdict, region and currency — calls, talk, billed seconds, cost,
  recording bytes and recordings. Spend, ASR/ACD, bypass rates, KPIs.
- ``recordings_daily``: per day, portal, user, line, direction, status and
  controller verdict, calls with a recording — recordings and bytes.
  Recording storage per user.
- ``user_spend_daily``: per day, portal, user and currency, paid calls of an
  employee — calls, billed seconds, cost. The employees who spend most.
- ``cdrs_hourly``: ``cdrs_daily`` per UTC hour (``started_hour``) and hang-up cause as
  well (the cause follows the status almost always: it adds few rows). Its hours add
  up to the days and hours of any zone whose offset is a whole number of hours
  (sources.py): the dashboard's days in Moscow or New York without reading the calls.
  About twice the rows of ``cdrs_daily`` (4.8 M against 2.1 M for 10 M calls of 50
  portals over a year), still half the calls and a few narrow columns.
- ``user_spend_hourly``: ``user_spend_daily`` per UTC hour, for the same reason: the
  employees' spend in the days of Moscow or New York. 1.9 M rows against 1.1 M daily for
  the same 10 M calls (2.4 M of them paid calls of an employee).
- ``recordings_hourly``: ``recordings_daily`` per UTC hour: recording storage per
  employee in the days of Moscow or New York (the Recordings page of a zoned user).

Dimensions are columns of ``cdrs``, or derived from them (``DERIVED``: the UTC hour);
the session time zone of every warehouse connection is UTC (duck.py), which is what
``date_trunc`` truncates in.
"""

from __future__ import annotations

from dataclasses import dataclass

from warehouse.schema import CDR_COLUMNS, TABLES, TableSpec, quote

_CDR_TYPES = dict(CDR_COLUMNS)
# Dimensions computed from the calls' columns: name -> (type, SQL expression).
DERIVED = {"started_hour": ("TIMESTAMPTZ", "date_trunc('hour', started_at)")}


@dataclass(frozen=True)
class Rollup:
    """One aggregate of ``cdrs``: its stored table, dimensions, measures and row filter."""

    spec: TableSpec
    dimensions: tuple[str, ...]
    measures: tuple[tuple[str, str], ...]  # name, SQL aggregate over cdrs rows
    where: str = ""  # which cdrs rows it counts

    @property
    def name(self) -> str:
        """The stored table's name."""
        return self.spec.name

    @property
    def measure_names(self) -> tuple[str, ...]:
        """Names of the measures, in column order."""
        return tuple(name for name, _ in self.measures)

    def select(self, source: str) -> str:
        """The rollup's rows of the cdrs rows of ``source`` (a table, view or subquery)."""
        dims = [f"{DERIVED[name][1]} AS {quote(name)}" if name in DERIVED else quote(name)
                for name in self.dimensions]
        measures = ", ".join(f"{sql} AS {quote(name)}" for name, sql in self.measures)
        where = f" WHERE {self.where}" if self.where else ""
        groups = ", ".join(str(n + 1) for n in range(len(dims)))
        return f"SELECT {', '.join(dims)}, {measures} FROM {source}{where} GROUP BY {groups}"


def _rollup(name: str, dimensions: tuple[str, ...], measures: tuple[tuple[str, str, str], ...],
            where: str = "") -> Rollup:
    columns = tuple((d, DERIVED[d][0] if d in DERIVED else _CDR_TYPES[d]) for d in dimensions) + \
        tuple((m, t) for m, t, _ in measures)
    spec = TableSpec(name, columns, dimensions, winner="", newest_wins=False,
                     partition="coalesce(strftime(started_day, '%Y-%m'), 'none')",
                     sort=", ".join(("started_day NULLS LAST",) + dimensions[1:]),
                     time_column="CAST(started_day AS TIMESTAMPTZ)")
    return Rollup(spec, dimensions, tuple((m, sql) for m, _, sql in measures), where)


DAILY = _rollup(
    "cdrs_daily",
    ("started_day", "portal_id", "line", "direction", "status", "controller", "region", "currency"),
    (("calls", "BIGINT", "count(*)"),
     ("talk_s", "DECIMAL(38,3)", "sum(talk_s)"),
     ("billed_s", "BIGINT", "CAST(sum(billed_s) AS BIGINT)"),
     ("cost", "DECIMAL(38,2)", "sum(cost)"),
     ("recording_bytes", "BIGINT", "CAST(sum(recording_bytes) AS BIGINT)"),
     ("recordings", "BIGINT", "count(*) FILTER (recording_bytes > 0)")),
)
RECORDINGS = _rollup(
    "recordings_daily",
    ("started_day", "portal_id", "user_id", "line", "direction", "status", "controller"),
    (("recordings", "BIGINT", "count(*)"),
     ("recording_bytes", "BIGINT", "CAST(sum(recording_bytes) AS BIGINT)")),
    where="recording_bytes > 0",
)
USER_SPEND = _rollup(
    "user_spend_daily",
    ("started_day", "portal_id", "user_id", "currency"),
    (("calls", "BIGINT", "count(*)"),
     ("billed_s", "BIGINT", "CAST(sum(billed_s) AS BIGINT)"),
     ("cost", "DECIMAL(38,2)", "sum(cost)")),
    where="user_id IS NOT NULL AND cost > 0",
)
HOURLY = _rollup(
    "cdrs_hourly",
    ("started_day", "started_hour", *DAILY.dimensions[1:], "hangup_cause"),
    tuple((name, dict(DAILY.spec.columns)[name], sql) for name, sql in DAILY.measures),
)
USER_SPEND_HOURLY = _rollup(
    "user_spend_hourly",
    ("started_day", "started_hour", *USER_SPEND.dimensions[1:]),
    tuple((name, dict(USER_SPEND.spec.columns)[name], sql) for name, sql in USER_SPEND.measures),
    where=USER_SPEND.where,
)
RECORDINGS_HOURLY = _rollup(
    "recordings_hourly",
    ("started_day", "started_hour", *RECORDINGS.dimensions[1:]),
    tuple((name, dict(RECORDINGS.spec.columns)[name], sql) for name, sql in RECORDINGS.measures),
    where=RECORDINGS.where,
)
ROLLUPS: tuple[Rollup, ...] = (DAILY, RECORDINGS, USER_SPEND, HOURLY, USER_SPEND_HOURLY, RECORDINGS_HOURLY)
_BY_NAME = {r.name: r for r in ROLLUPS}


def spec_of(table: str) -> TableSpec:
    """The declaration of any stored table: one of ``schema.TABLES``, a rollup or the call index."""
    from warehouse import call_index

    if table == call_index.NAME:
        return call_index.SPEC
    return _BY_NAME[table].spec if table in _BY_NAME else TABLES[table]
