"""Alerts: Controller bypasses per portal on a timeline, outages open and resolved, stale
keys, licence errors, config_not_found (a development copy taking calls), extranet and
unrated calls, and the messages refused (the worker's DLQ, the sink's rejects) by reason."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import Input, Output, html

from dashboards import figures, formatting as fmt, layout as ui, notify_panel
from dashboards.data import Context
from dashboards.pages.common import page_filter, register_portal_picker
from warehouse import dashboard_queries as dq, queries

NAME, PATH, TITLE = "alerts", "/alerts", "Alerts"
TYPES = (("controller_bypassed", "Calls bypassing the Controller"), ("controller_outage", "Controller outages"),
         ("stale_key", "Stale direct-access keys"), ("license_error", "Licence errors"),
         ("config_not_found", "config_not_found (a development copy taking calls)"),
         ("extranet_call", "Extranet calls on external lines"), ("unrated_call", "Unrated calls"))
OTHER_TYPES = ("stale_key", "license_error", "config_not_found", "extranet_call", "unrated_call")
TIMELINE_POINTS = 2000


def layout(ctx: Context) -> html.Div:
    """Period bar, counts, timeline, outages, other alerts and the refused messages."""
    return html.Div([
        html.H1(TITLE), ui.period_bar("al"),
        html.Div([html.Div([html.H3("Alerts in this period"), html.Div(id="al-counts")], className="card"),
                  ui.chart("al-dlq")], className="grid2"),
        ui.chart("al-timeline", wide=True),
        html.Div([html.H3("Controller outages"), html.Div(id="al-outages")], className="card wide"),
        html.Div([html.H3("Latest other alerts"), html.Div(id="al-latest")], className="card wide"),
        notify_panel.section(),
    ])


def count_rows(counts: pd.DataFrame) -> list[tuple[str, str]]:
    """(alert kind, count text) for every kind, zero included; outages split open/resolved.

    Withdrawn alerts (``retracted``: later events showed they do not stand) are not counted.
    """
    rows = []
    for kind, label in TYPES:
        part = counts[(counts["type"] == kind) & (counts["state"].fillna("") != "retracted")]
        total = int(part["count"].sum()) if len(part) else 0
        text = fmt.count(total)
        if kind == "controller_outage":
            open_ = int(part[part["state"] == "open"]["count"].sum()) if len(part) else 0
            text += f" ({fmt.count(open_)} open)"
        rows.append((label, text))
    return rows


def outage_rows(outages: pd.DataFrame, now: Any) -> list[tuple[str, ...]]:
    """(portal, state, opened, resolved, duration) of each outage, newest first."""
    return [(s["portal_id"], s["state"], fmt.timestamp(s["opened"]), fmt.timestamp(s["resolved"]),
             fmt.seconds((s["end"] - s["opened"]).total_seconds()) + ("" if s["resolved"] else " so far"))
            for s in figures.outage_spans(outages, now)]


def latest_rows(latest: pd.DataFrame) -> list[tuple[str, ...]]:
    """(time, type, portal, call, detail as JSON text) of alerts."""
    return [(fmt.timestamp(r["ts"]), r["type"], r["portal_id"], r["call_id"], r["detail"] or "")
            for r in latest.to_dict("records")]


def render(ctx: Context, period: str | None, portals: Any) -> tuple[Any, ...]:
    """(counts table, refused-messages figure, timeline figure, outages table, latest alerts table)."""
    flt = page_filter(ctx, period, portals)
    span = {"start": flt.start, "end": flt.end, "portals": tuple(flt.portals)}
    counts = ctx.data.get(dq.alert_counts, start=flt.start, end=flt.end, portals=tuple(flt.portals))
    bypasses = ctx.data.get(queries.alerts, **span, types=("controller_bypassed",), live_only=True,
                            page_size=TIMELINE_POINTS)
    outages = ctx.data.get(queries.alerts, **span, types=("controller_outage",), page_size=500)
    latest = ctx.data.get(queries.alerts, **span, types=OTHER_TYPES, live_only=True, page_size=50)
    refused = ctx.data.get(dq.refused_counts, start=flt.start, end=flt.end)
    now = ctx.now()
    return (ui.text_table(("alert", "count"), count_rows(counts), "al-counts-table"),
            figures.bars(refused, "reason", "count", "Refused messages by reason (DLQ; the sink's by topic)",
                         color=figures.PALETTE[3]),
            figures.bypass_timeline(bypasses, outages, now),
            ui.text_table(("portal", "state", "opened", "resolved", "duration"), outage_rows(outages, now),
                              "al-outages-table", empty="No Controller outage in this period"),
            ui.text_table(("time", "type", "portal", "call", "detail"), latest_rows(latest), "al-latest-table",
                              empty="No stale keys, licence errors, development copies, extranet or unrated calls"))


def register(app: Any, ctx: Context) -> None:
    """Wire the page to the data stamp and the period bar."""
    app.callback(Output("al-counts", "children"), Output("al-dlq", "figure"), Output("al-timeline", "figure"),
                 Output("al-outages", "children"), Output("al-latest", "children"),
                 Input("seq", "data"), Input("al-period", "value"), Input("al-portals", "value"))(
        lambda _seq, period, portals: render(ctx, period, portals))
    register_portal_picker(app, ctx, "al")
    notify_panel.register(app, ctx)

