"""The billing CSV of contract v1, written by DuckDB's own CSV writer.

One row per call (its latest CDR) with ``started_at`` in ``[start, end)``,
optionally one portal, ordered by ``started_at`` then ``call_id``. RFC 4180:
a header row, fields quoted only when they hold a comma, a quote or a line
break (quotes doubled), CRLF line ends, UTF-8. Nulls are empty cells. Money
and seconds are printed exactly as in the CDR: ``rate_per_min`` and ``cost``
from the CDR's own strings, ``talk_s`` from DECIMAL(18,3) (the CDR writes it
with exactly three decimals), timestamps as ``2026-11-25T10:15:30.123Z``.
Incomplete calls without ``started_at`` fall in no range.

To a file: written to a temporary file next to the target and renamed over
it only when complete, so the target name never holds half a file. To
stdout: streamed by DuckDB straight to the process's standard output.
"""

from __future__ import annotations

import os
import sys
import uuid
from datetime import datetime
from pathlib import Path

import duckdb

from warehouse.reader import Reader
from warehouse.schema import quote

CSV_COLUMNS = ("call_id", "portal_id", "started_at", "answered_at", "ended_at", "direction", "line",
               "from", "to", "shown_number", "user_id", "region", "status", "talk_s", "billed_s",
               "rate_per_min", "cost", "currency", "controller", "recording_bytes", "recording_url")

# strftime on a plain TIMESTAMP (epoch arithmetic, UTC) avoids the time-zone library per value.
_TS = "strftime(make_timestamp(epoch_us({col})), '%Y-%m-%dT%H:%M:%S.%gZ')"
_EXPRESSIONS = {
    "started_at": _TS.format(col="started_at"),
    "answered_at": _TS.format(col="answered_at"),
    "ended_at": _TS.format(col="ended_at"),
    "talk_s": "CAST(talk_s AS VARCHAR)",
    "rate_per_min": "rate_per_min_text",
    "cost": "cost_text",
    "recording_url": "recording_urls[1]",
}
_CSV_OPTIONS = ("FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', ESCAPE '\"', "
                "NEW_LINE '\\r\\n', NULLSTR ''")


class ExportError(RuntimeError):
    """The export cannot be written (the message is one line for the user)."""


def export_query(start: datetime, end: datetime, portal: str | None) -> tuple[str, list[object]]:
    """The billing query and its parameters."""
    select = ", ".join(f"{_EXPRESSIONS.get(name, quote(name))} AS {quote(name)}" for name in CSV_COLUMNS)
    conditions = "started_at >= ? AND started_at < ?"
    params: list[object] = [start, end]
    if portal is not None:
        conditions += " AND portal_id = ?"
        params.append(portal)
    return f"SELECT {select} FROM cdrs WHERE {conditions} ORDER BY started_at, call_id", params


def _copy(reader: Reader, target: str, start: datetime, end: datetime, portal: str | None) -> int:
    query, params = export_query(start, end, portal)
    with reader.cursor() as con:
        return con.execute(f"COPY ({query}) TO ? ({_CSV_OPTIONS})", [*params, target]).fetchall()[0][0]


def _temp_next_to(out: Path) -> Path:
    """Create (and so check we can write) a temporary file in the target's directory."""
    if out.is_dir():
        raise ExportError(f"cannot write {out}: it is a directory")
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror}") from None
    os.close(fd)
    return tmp


def export_to_file(reader: Reader, out: Path, start: datetime, end: datetime,
                   portal: str | None = None) -> int:
    """Write the billing CSV to ``out`` atomically; returns the number of calls."""
    tmp = _temp_next_to(out)
    try:
        rows = _copy(reader, str(tmp), start, end, portal)
        os.replace(tmp, out)
        return rows
    except duckdb.Error as exc:
        raise ExportError(f"export failed, {out} left unchanged: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


def export_to_stdout(reader: Reader, start: datetime, end: datetime, portal: str | None = None) -> int:
    """Stream the billing CSV to standard output (fd 1); returns the number of calls."""
    sys.stdout.flush()
    return _copy(reader, "/dev/stdout", start, end, portal)
