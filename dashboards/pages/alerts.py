"""Alerts: Controller bypasses per portal on a timeline, outages open and resolved, stale
keys, licence errors, config_not_found (a development copy taking calls), extranet and
unrated calls, and the messages refused (the worker's DLQ, the sink's rejects) by reason."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import Input, Output, dcc, html

from dashboards import figures, notify_panel
from dashboards import formatting as fmt
from dashboards import layout as ui
from dashboards.access import current_user
from dashboards.alert_names import NAMES, alert_name, state_name
from dashboards.data import Context
from dashboards.i18n import N_, _
from dashboards.pages.common import page_filter, register_links, register_portal_picker
from warehouse import dashboard_queries as dq
from warehouse import queries

NAME, PATH, TITLE = "alerts", "/alerts", N_("Alerts")
TYPES = tuple((kind, NAMES[kind]) for kind in (
    "controller_bypassed", "controller_outage", "stale_key", "license_error", "config_not_found", "extranet_call",
    "unrated_call", "recording_missing", "spend_spike", "low_asr", "recording_storage_80", "recording_storage_90",
    "recording_storage_100"))
OTHER_TYPES = tuple(kind for kind, _name in TYPES if kind not in ("controller_bypassed", "controller_outage"))
TIMELINE_POINTS = 2000


def layout(ctx: Context, query: dict | None = None) -> html.Div:
    """Period bar, counts, timeline, outages, other alerts and the refused messages."""
    query = query or {}
    return html.Div([
        html.H1(_(TITLE)), ui.period_bar("al", period=query.get("period"), chosen=query.get("portals")),
        html.Div([html.Div([html.H3(_("Alerts in this period")), html.Div(id="al-counts")], className="card"),
                  ui.chart("al-dlq")], className="grid2"),
        ui.chart("al-timeline", wide=True),
        html.Div([html.H3(_("Controller outages")), html.Div(id="al-outages")], className="card wide"),
        html.Div([html.H3(_("Latest other alerts")), html.Div(id="al-latest")], className="card wide"),
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
            text += " " + _("({n} open)").format(n=fmt.count(open_))
        rows.append((_(label), text))
    return rows


def outage_rows(outages: pd.DataFrame, now: Any) -> list[tuple[str, ...]]:
    """(portal, state, opened, resolved, duration) of each outage, newest first."""
    return [(s["portal_id"], state_name(s["state"]), fmt.timestamp(s["opened"]), fmt.timestamp(s["resolved"]),
             fmt.seconds((s["end"] - s["opened"]).total_seconds()) + ("" if s["resolved"] else " " + _("so far")))
            for s in figures.outage_spans(outages, now)]


def latest_rows(latest: pd.DataFrame) -> list[tuple[str, ...]]:
    """(time, type, portal, call, detail as JSON text) of alerts."""
    return [(fmt.timestamp(r["ts"]), alert_name(r["type"]), r["portal_id"], _call_link(r["call_id"]),
             r["detail"] or "") for r in latest.to_dict("records")]


def _call_link(call_id: Any) -> Any:
    """The alert's call as a link to its page (drill-down), or a dash."""
    if not isinstance(call_id, str) or not call_id or len(call_id) > 256:
        return "—"
    from urllib.parse import quote

    return html.Td(dcc.Link(call_id, href="/calls/" + quote(call_id, safe=""), className="call-link"))


def render(ctx: Context, period: str | None, portals: Any) -> tuple[Any, ...]:
    """(counts table, refused-messages figure, timeline figure, outages table, latest alerts table)."""
    flt = page_filter(ctx, period, portals)
    span = {"start": flt.start, "end": flt.end, "portals": tuple(flt.portals)}
    counts = ctx.data.get(dq.alert_counts, start=flt.start, end=flt.end, portals=tuple(flt.portals))
    bypasses = ctx.data.get(queries.alerts, **span, types=("controller_bypassed",), live_only=True,
                            page_size=TIMELINE_POINTS)
    outages = ctx.data.get(queries.alerts, **span, types=("controller_outage",), page_size=500)
    latest = ctx.data.get(queries.alerts, **span, types=OTHER_TYPES, live_only=True, page_size=50)
    now = ctx.now()
    title = _("Refused messages by reason (DLQ; the sink's by topic)")
    if current_user().scope is None:  # the pipeline's own health: operators only
        refused = figures.bars(ctx.data.get(dq.refused_counts, start=flt.start, end=flt.end), "reason", "count",
                               title, color=figures.PALETTE[3])
    else:
        refused = figures.empty(_("Refused messages are shown to operators"))
    return (ui.text_table((_("alert"), _("count")), count_rows(counts), "al-counts-table"),
            refused,
            figures.bypass_timeline(bypasses, outages, now),
            ui.text_table((_("portal"), _("state"), _("opened"), _("resolved"), _("duration")),
                          outage_rows(outages, now), "al-outages-table",
                          empty=_("No Controller outage in this period")),
            ui.text_table((_("time"), _("type"), _("portal"), _("call"), _("detail")), latest_rows(latest),
                          "al-latest-table", empty=_("No other alerts in this period")))


def register(app: Any, ctx: Context) -> None:
    """Wire the page to the data stamp and the period bar."""
    app.callback(Output("al-counts", "children"), Output("al-dlq", "figure"), Output("al-timeline", "figure"),
                 Output("al-outages", "children"), Output("al-latest", "children"),
                 Input("seq", "data"), Input("al-period", "value"), Input("al-portals", "value"))(
        lambda _seq, period, portals: render(ctx, period, portals))
    register_portal_picker(app, ctx, "al")
    register_links(app, "al", ("al-timeline",))
    notify_panel.register(app, ctx)

