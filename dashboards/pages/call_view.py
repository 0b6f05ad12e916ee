"""One call opened from the table: its full CDR, its event timeline and its recordings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from dash import html

from dashboards import formatting as fmt, layout as ui
from dashboards.data import Context
from warehouse import queries

# Storage bookkeeping, not part of the CDR a user reads.
HIDDEN = {"kafka_partition", "kafka_offset", "rate_per_min_text", "cost_text", "started_day", "recording_urls"}


def cdr_text(value: Any) -> str:
    """One CDR value as the contract prints it (times RFC 3339 UTC, money and seconds exact)."""
    if fmt.missing(value):
        return "—"
    if isinstance(value, datetime):
        return fmt.timestamp(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def cdr_rows(cdr: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, text) of every CDR field a reader cares about, in warehouse order."""
    rows = [(name, cdr_text(value)) for name, value in cdr.items() if name not in HIDDEN]
    if cdr.get("cost_text") is not None:  # the CDR's own string, exactly as billed
        rows = [(n, cdr["cost_text"] if n == "cost" else t) for n, t in rows]
    if cdr.get("rate_per_min_text") is not None:
        rows = [(n, cdr["rate_per_min_text"] if n == "rate_per_min" else t) for n, t in rows]
    return rows


def timeline_rows(events: Any) -> list[tuple[str, str, str, str, str]]:
    """(time, type, source, node, data as JSON text) of each distinct event, by time."""
    return [(fmt.timestamp(e["ts"]), e["type"], e["source"], e["node"], e["data"] or "{}")
            for e in events.to_dict("records")]


def render(ctx: Context, call_id: str) -> html.Div:
    """The opened call, or a note when it is not (or no longer) in the warehouse."""
    cdr = ctx.data.get(queries.cdr_by_id, call_id)
    if cdr is None:
        return html.Div(f"Call {call_id} is not in the warehouse", className="empty-note", id="call-missing")
    events = ctx.data.get(queries.call_timeline, call_id)
    urls = list(cdr.get("recording_urls") or [])
    return html.Div([
        html.H2(f"Call {call_id}", id="call-title"),
        html.Div([
            html.Div([html.H3("CDR"), ui.text_table(("field", "value"), cdr_rows(cdr), "call-cdr")],
                     className="card"),
            html.Div([html.H3("Event timeline"),
                      ui.text_table(("time", "type", "source", "node", "data"), timeline_rows(events),
                                        "call-timeline", empty="No events of this call in the warehouse"),
                      html.H3("Recordings"),
                      html.Div([ui.recording(u) for u in urls] or "No recording", id="call-recordings")],
                     className="card"),
        ], className="grid2"),
    ], id="call-view")
