"""``/download/calls.csv``: the call table's current filter as a billing CSV (contract v1).

The bytes are those of ``callstream export`` for the same calls (DuckDB's CSV
writer, the export's column expressions). What one request may cost is bounded:

- at most ``CALLSTREAM_DASH_DOWNLOAD_MAX_ROWS`` calls (counted first, from the
  rollups when the filter allows): a wider filter is a 400 that says to narrow
  it or to use ``callstream export``, which has no such limit;
- at most ``CALLSTREAM_DASH_DOWNLOADS`` downloads at once: one more is a 429
  with ``Retry-After``;
- streamed: the range is cut into whole UTC days of about ``CHUNK_ROWS``
  calls; DuckDB sorts and writes one chunk at a time to a temporary file,
  which is sent and deleted. Neither memory nor the scratch disk ever holds
  the whole result, and a client that goes away stops the work.

A malformed ``q`` (not JSON, too deep, a value no control can hold) is a 400
with the reason; files of the range that are quarantined or unreadable make
it a 409 (a bill silently missing calls is worse than none).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from dashboards import controls, view
from dashboards.access import current_user
from dashboards.data import Context
from dashboards.i18n import _, current_locale
from dashboards.pages.calls import DOWNLOAD_PATH
from warehouse import dashboard_queries as dq
from warehouse.export import BOM, CONTRACT, Dialect, describe_missing, dialect, missing_billing_data
from warehouse.filters import CallFilter, utc_start
from warehouse.sources import aggregate_source

log = logging.getLogger(__name__)

# Calls per chunk: one DuckDB sort at a time of at most about this many rows.
CHUNK_ROWS = 50_000
RETRY_AFTER_S = 10
_BLOCK = 256 * 1024


def filter_of_query(text: str | None, ctx: Context) -> CallFilter:
    """The CallFilter carried by the link's ``q`` parameter (JSON of the control values), limited
    to the requesting user's portals whatever ``q`` says (the scope comes from the account)."""
    try:
        values = json.loads(text or "{}")
    except (ValueError, RecursionError):
        raise controls.FilterError("q: not JSON (or nested too deep)") from None
    if not isinstance(values, dict):
        raise controls.FilterError("q: expected an object of filter values")
    return view.filter_of(ctx, values).replace(scope=current_user().scope)


def file_name(flt: Any) -> str:
    """``calls-2026-11-01--2026-11-30.csv`` (local days of the view, the last one included)."""
    return f"calls-{controls.first_day(flt).isoformat()}--{controls.last_day(flt).isoformat()}.csv"


def day_chunks(ctx: Context, flt: CallFilter, chunk_rows: int) -> tuple[int, list[CallFilter]]:
    """(calls matching ``flt``, the filter cut into consecutive whole-day filters of ~``chunk_rows`` calls)."""
    src = aggregate_source(flt)
    sql = (f"SELECT started_day, {src.calls} FROM {src.table} {src.where} "
           f"{'AND' if src.where else 'WHERE'} started_day IS NOT NULL GROUP BY 1 HAVING {src.calls} > 0 ORDER BY 1")
    days = ctx.data.reader.read(lambda con: con.execute(sql, src.params).fetchall())
    total = sum(int(n) for _, n in days)
    chunks, lower, rows = [], flt.start, 0
    for day, count in days:
        rows += int(count)
        cut = utc_start(day + timedelta(days=1))
        if rows >= chunk_rows and utc_start(lower) < cut < utc_start(flt.end):
            chunks.append(flt.replace(start=lower, end=cut))
            lower, rows = cut, 0
    return total, chunks + [flt.replace(start=lower, end=flt.end)]


class Slot:
    """One of the download slots, released once: when the stream ends, or when its response closes."""

    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self._slots, self._held, self._lock = slots, True, threading.Lock()

    def release(self) -> None:
        """Give the slot back (again: nothing)."""
        with self._lock:
            if self._held:
                self._held = False
                self._slots.release()


def csv_stream(ctx: Context, chunks: list[CallFilter], slot: Slot, style: Dialect = CONTRACT) -> Iterator[bytes]:
    """The CSV of ``chunks`` in order, each written by DuckDB to a temporary file, sent, then deleted.

    The temporary directory exists only while the stream runs, and the slot is given back as
    soon as it ends — sent to the end, failed, or closed early by the server.
    """
    workdir = Path(tempfile.mkdtemp(prefix="callstream-download-"))
    try:
        if style.bom:
            yield BOM
        for n, chunk in enumerate(chunks):
            path = workdir / f"chunk-{n:05d}.csv"
            ctx.data.reader.read(lambda con, c=chunk, p=path, h=(n == 0):
                                 dq.copy_billing_csv(con, c, p, header=h, style=style))
            with open(path, "rb") as handle:
                while block := handle.read(_BLOCK):
                    yield block
            path.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        slot.release()


def _text(message: str, status: int, **headers: Any) -> Any:
    from flask import Response

    return Response(message.rstrip("\n") + "\n", status=status, mimetype="text/plain", headers=headers)


class Downloads:
    """The download route's state: a bounded number of slots."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.max_rows = ctx.settings.dash_download_max_rows
        self.slots = threading.BoundedSemaphore(ctx.settings.dash_downloads)

    def serve(self, query: str | None, dialect_name: str | None = None) -> Any:
        """The response to one download request (``query``: the ``q`` parameter; ``dialect_name``:
        ``contract`` (default) or ``excel``). Viewers get a 403; each download is audited."""
        user = current_user()
        if not user.can_download:
            return _text(_("Your account may not download CSV files."), 403)
        try:
            flt = filter_of_query(query, self.ctx)
            style = dialect(dialect_name or "contract", current_locale())
        except (controls.FilterError, ValueError) as exc:
            return _text(f"bad filter: {exc}", 400)
        if not self.slots.acquire(blocking=False):
            return _text(f"at most {self.ctx.settings.dash_downloads} CSV downloads at once; try again in "
                         f"{RETRY_AFTER_S} s", 429, **{"Retry-After": str(RETRY_AFTER_S)})
        try:
            response = self._start(flt, style)
        except BaseException:
            self.slots.release()
            raise
        if response.status_code != 200:
            self.slots.release()
        else:
            self.ctx.accounts.audit(user.name, "csv_download", {"q": query or "{}", "dialect": style.name,
                                                               "portals": list(flt.scope or ["*"])})
        return response

    def _start(self, flt: CallFilter, style: Dialect) -> Any:
        from flask import Response

        missing = missing_billing_data(self.ctx.data.reader, utc_start(flt.start), utc_start(flt.end))
        if missing:
            return _text(f"{describe_missing(missing)}; recover them with `callstream rebuild`, or use "
                         "`callstream export --allow-incomplete`", 409)
        total, chunks = day_chunks(self.ctx, flt, CHUNK_ROWS)
        if total > self.max_rows:
            return _text(f"{total:,} calls match this filter; a download holds at most {self.max_rows:,}: "
                         "narrow the filter (fewer days, a portal) or use `callstream export`", 400)
        slot = Slot(self.slots)
        response = Response(csv_stream(self.ctx, chunks, slot, style), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="{file_name(flt)}"'
        response.headers["Cache-Control"] = "no-store"
        response.call_on_close(slot.release)  # a response closed before its stream started
        return response


def install(server: Any, ctx: Context) -> None:
    """Add the download route to the Flask ``server`` (behind the same auth as the pages)."""
    from flask import request

    downloads = Downloads(ctx)
    server.add_url_rule(DOWNLOAD_PATH, "download_calls",
                        lambda: downloads.serve(request.args.get("q"), request.args.get("dialect")))
