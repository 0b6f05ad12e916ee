"""The billing CSV of contract v1, written by DuckDB's own CSV writer.

One row per call (its latest CDR) with ``started_at`` in ``[start, end)``,
optionally one portal, ordered by ``started_at`` then ``call_id``. RFC 4180:
a header row, fields quoted only when they hold a comma, a quote or a line
break (quotes doubled), CRLF line ends, UTF-8. Nulls are empty cells. Money
and seconds are printed exactly as in the CDR: ``rate_per_min`` and ``cost``
from the CDR's own strings, ``talk_s`` from DECIMAL(18,3) (the CDR writes it
with exactly three decimals), timestamps as ``2026-11-25T10:15:30.123Z``.
Incomplete calls without ``started_at`` fall in no range.

The range is cut at UTC midnights into chunks of about 100,000 calls; DuckDB
sorts and writes each chunk (two at a time), and the chunks are appended in
order: the output is the same as one big sorted COPY, with memory bounded by
two chunks. To a file: through :func:`warehouse.outfile.replacing` (a private
temporary directory next to the target, fsync, rename: the target name never
holds half a file, its permissions never widen, a killed export's leftovers go
at the next run). To stdout: each chunk is streamed as soon as it is ready,
with the chunks in a private directory under the system's temporary directory.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import BinaryIO

import duckdb

from warehouse import queries
from warehouse.outfile import TargetError, private_dir, replacing, shown, sweep
from warehouse.reader import Reader
from warehouse.schema import quote

CSV_COLUMNS = ("call_id", "portal_id", "started_at", "answered_at", "ended_at", "direction", "line",
               "from", "to", "shown_number", "user_id", "region", "status", "talk_s", "billed_s",
               "rate_per_min", "cost", "currency", "controller", "recording_bytes", "recording_url")

# strftime on a plain TIMESTAMP (epoch arithmetic, UTC) avoids the time-zone library per value.
_TS = "strftime(make_timestamp(epoch_us({col})), '%Y-%m-%dT%H:%M:%S.%gZ')"
CSV_EXPRESSIONS = {
    "started_at": _TS.format(col="started_at"),
    "answered_at": _TS.format(col="answered_at"),
    "ended_at": _TS.format(col="ended_at"),
    "talk_s": "CAST(talk_s AS VARCHAR)",
    "rate_per_min": "rate_per_min_text",
    "cost": "cost_text",
    "recording_url": "recording_urls[1]",
}
CSV_OPTIONS = ("FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', ESCAPE '\"', "
                "NEW_LINE '\\r\\n', NULLSTR ''")
DECIMAL_COLUMNS = ("talk_s", "rate_per_min", "cost")
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Dialect:
    """How the CSV is spelled: the contract's (default, byte-exact) or Excel's.

    ``excel``: ``;`` between fields, a UTF-8 byte order mark first (Excel then reads
    UTF-8), and with ``decimal_comma`` (a Russian locale) ``12,50`` instead of ``12.50``
    in the money and seconds columns. Timestamps stay RFC 3339 UTC in both.
    """

    name: str = "contract"
    delimiter: str = ","
    bom: bool = False
    decimal_comma: bool = False

    def options(self, header: bool) -> str:
        """The COPY options of this dialect."""
        return CSV_OPTIONS.replace("HEADER true", f"HEADER {str(header).lower()}").replace(
            "DELIMITER ','", f"DELIMITER '{self.delimiter}'")

    def expression(self, name: str) -> str:
        """The SQL that prints column ``name`` in this dialect."""
        expr = CSV_EXPRESSIONS.get(name, quote(name))
        if self.decimal_comma and name in DECIMAL_COLUMNS:
            return f"replace({expr}, '.', ',')"
        return expr


CONTRACT = Dialect()


def dialect(name: str, locale: str = "en") -> Dialect:
    """``contract`` or ``excel`` (decimal comma when ``locale`` is Russian); ValueError otherwise."""
    if name == "contract":
        return CONTRACT
    if name == "excel":
        return Dialect("excel", ";", True, locale.lower().startswith("ru"))
    raise ValueError(f"unknown CSV dialect {name!r}: contract or excel")


# Calls per chunk: each chunk is one sorted DuckDB COPY, so memory does not grow with the range.
CHUNK_ROWS = 100_000


# Former private names, still used by warehouse.dashboard_queries.
_EXPRESSIONS, _CSV_OPTIONS = CSV_EXPRESSIONS, CSV_OPTIONS


# The chunks of an export to stdout: private directories in the system's temporary directory.
_STDOUT_PREFIX = "callstream-export."


class ExportError(RuntimeError):
    """The export cannot be written (the message is one line for the user)."""


def months(start: datetime, end: datetime) -> set[str]:
    """The ``YYYY-MM`` labels (cdrs base partitions, UTC) that calls started in [start, end) fall in."""
    labels, year, month = set(), start.astimezone(UTC).year, start.astimezone(UTC).month
    last = (end - timedelta(microseconds=1)).astimezone(UTC)
    while (year, month) <= (last.year, last.month):
        labels.add(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return labels


def missing_billing_data(reader: Reader, start: datetime, end: datetime) -> list[dict]:
    """The quarantined or unreadable ``cdrs`` files that may hold calls started in [start, end).

    A base file holds one month; a delta holds the months of its ``labels``. (A call whose
    ``started_at`` moved to another month in a lost version is the one case this misses.)
    """
    wanted = months(start, end)
    return [m for m in queries.missing_data(reader) if m["table"] == "cdrs"
            and ({m["partition"]} if m["kind"] == "base" else set(m["labels"])) & wanted]


def describe_missing(missing: list[dict]) -> str:
    """One line naming the files whose rows are missing (the first three, then a count)."""
    named = ", ".join(f"{m['path']} ({m['state']}: {m['reason']}, {m['rows']} rows)" for m in missing[:3])
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    return f"the warehouse is missing billing data: {named}{more}"


def export_query(start: datetime, end: datetime, portal: str | None,
                 style: Dialect = CONTRACT) -> tuple[str, list[object]]:
    """The billing query and its parameters."""
    select = ", ".join(f"{style.expression(name)} AS {quote(name)}" for name in CSV_COLUMNS)
    conditions = "started_at >= ? AND started_at < ?"
    params: list[object] = [start, end]
    if portal is not None:
        conditions += " AND portal_id = ?"
        params.append(portal)
    return f"SELECT {select} FROM cdrs WHERE {conditions} ORDER BY started_at, call_id", params


def chunk_bounds(reader: Reader, start: datetime, end: datetime, portal: str | None,
                 chunk_rows: int = CHUNK_ROWS) -> list[tuple[datetime, datetime]]:
    """Consecutive sub-ranges of [start, end), cut at UTC midnights, of about ``chunk_rows`` calls."""
    query = "SELECT started_day, count(*) FROM cdrs WHERE started_at >= ? AND started_at < ?"
    params: list[object] = [start, end]
    if portal is not None:
        query += " AND portal_id = ?"
        params.append(portal)
    with reader.cursor() as con:
        days = con.execute(query + " GROUP BY 1 ORDER BY 1", params).fetchall()
    bounds, lower, rows = [], start, 0
    for day, count in days:
        rows += count
        cut = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
        if rows >= chunk_rows and lower < cut < end:
            bounds.append((lower, cut))
            lower, rows = cut, 0
    return bounds + [(lower, end)]


def _copy_chunk(reader: Reader, target: Path, bounds: tuple[datetime, datetime], portal: str | None,
                header: bool, style: Dialect = CONTRACT) -> int:
    query, params = export_query(*bounds, portal, style)
    options = style.options(header)
    with reader.cursor() as con:
        return con.execute(f"COPY ({query}) TO ? ({options})", [*params, str(target)]).fetchall()[0][0]


def stream_csv(reader: Reader, dest: BinaryIO, workdir: Path, start: datetime, end: datetime,
               portal: str | None = None, chunk_rows: int = CHUNK_ROWS, style: Dialect = CONTRACT) -> int:
    """Write the billing CSV to ``dest`` chunk after chunk; returns the number of calls.

    Each chunk (about ``chunk_rows`` calls, whole UTC days) is sorted and written by
    DuckDB into ``workdir``, two at a time, then appended to ``dest`` in order and
    deleted: memory and scratch space stay bounded by two chunks, whatever the range.
    """
    chunks = chunk_bounds(reader, start, end, portal, chunk_rows)
    paths = [workdir / f"chunk-{n:06d}.csv" for n in range(len(chunks))]
    rows = 0
    if style.bom:
        dest.write(BOM)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="export") as pool:
        futures = [pool.submit(_copy_chunk, reader, path, bounds, portal, n == 0, style)
                   for n, (path, bounds) in enumerate(zip(paths, chunks))]
        try:
            for future, path in zip(futures, paths):
                rows += future.result()
                with open(path, "rb") as chunk:
                    shutil.copyfileobj(chunk, dest, 1024 * 1024)
                path.unlink()
        finally:
            for future in futures:
                future.cancel()
    return rows


def export_to_file(reader: Reader, out: Path, start: datetime, end: datetime,
                   portal: str | None = None, chunk_rows: int = CHUNK_ROWS, style: Dialect = CONTRACT) -> int:
    """Write the billing CSV to ``out`` atomically, never widening its permissions; returns the number of calls."""
    try:
        with replacing(out) as (dest, workdir):
            rows = stream_csv(reader, dest, workdir, start, end, portal, chunk_rows, style)
        return rows
    except TargetError as exc:
        raise ExportError(str(exc)) from None
    except duckdb.Error as exc:
        raise ExportError(f"export failed, {shown(out)} left unchanged: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise ExportError(f"export failed, {shown(out)} left unchanged: {exc.strerror}") from None


def export_to_stdout(reader: Reader, start: datetime, end: datetime, portal: str | None = None,
                     chunk_rows: int = CHUNK_ROWS, style: Dialect = CONTRACT) -> int:
    """Stream the billing CSV to standard output as chunks complete; returns the number of calls."""
    scratch = Path(tempfile.gettempdir())
    sweep(scratch, _STDOUT_PREFIX)
    try:
        with private_dir(scratch, _STDOUT_PREFIX) as workdir:
            sys.stdout.flush()
            rows = stream_csv(reader, sys.stdout.buffer, workdir, start, end, portal, chunk_rows, style)
            sys.stdout.buffer.flush()
            return rows
    except duckdb.Error as exc:
        raise ExportError(f"export failed: {str(exc).splitlines()[0]}") from None
