"""Recordings: disk used over time, growth per day, by portal, employee and line, the
biggest consumers, and the days left until the recording quota is full."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from dash import Input, Output, html

from dashboards import controls, figures, view
from dashboards import formatting as fmt
from dashboards import layout as ui
from dashboards.access import current_user
from dashboards.data import Context
from dashboards.i18n import N_, _
from dashboards.pages.common import page_filter, register_links, register_portal_picker
from warehouse import dashboard_queries as dq
from warehouse import queries
from warehouse.filters import local_start

NAME, PATH, TITLE = "recordings", "/recordings", N_("Recordings")
GRAPHS = ("rec-storage", "rec-growth", "rec-by-portal", "rec-by-line")
GROWTH_WINDOW_DAYS = 14


def days_until_full(used: int, quota: int, window_bytes: int, window_days: float) -> float | None:
    """Days until ``used`` reaches ``quota`` if storage keeps growing as in the recent window.

    0 when already full; None when nothing grew in the window (no estimate is honest then).
    """
    if used >= quota:
        return 0.0
    if window_bytes <= 0 or window_days <= 0:
        return None
    return (quota - used) / (window_bytes / window_days)


def growth_window(daily: Any, now: datetime, days: int = GROWTH_WINDOW_DAYS) -> tuple[int, float]:
    """(bytes stored, days elapsed) over the last ``days`` days of ``recording_bytes_daily`` rows.

    The window starts ``days`` UTC days before today, or on the first day with recordings
    if that is later (a young warehouse), and ends now, so today's partial day counts as
    the fraction of it that has passed.
    """
    start = datetime.combine(now.date() - timedelta(days=days), time(0), tzinfo=UTC)
    recent = [(d, b) for d, b in zip(daily["day"], daily["bytes"]) if d >= start.date()]
    if not recent:
        return 0, 0.0
    first = datetime.combine(min(d for d, _ in recent), time(0), tzinfo=UTC)
    return sum(int(b) for _, b in recent), (now - max(start, first)).total_seconds() / 86400


def quota_text(used: int, quota: int, days: float | None) -> str:
    """The quota sentence of the page."""
    share = fmt.percent(used / quota) if quota else "—"
    head = _("{used} of {quota} used ({share})").format(used=fmt.size(used), quota=fmt.size(quota), share=share)
    if days is None:
        return head + " · " + _("no growth recently: no estimate")
    if days == 0:
        return head + " · " + _("the quota is full")
    return head + " · " + _("full in about {days} days at the growth of the last {window} days").format(
        days=fmt.count(round(days)), window=GROWTH_WINDOW_DAYS)


def layout(ctx: Context, query: dict | None = None) -> html.Div:
    """Period bar (from the address), quota line, charts and the biggest consumers."""
    query = query or {}
    return html.Div([
        html.H1(_(TITLE)), ui.period_bar("rec", period=query.get("period"), chosen=query.get("portals")),
        html.Div(id="rec-quota", className="card wide quota"),
        html.Div([ui.chart("rec-storage"), ui.chart("rec-growth"), ui.chart("rec-by-portal"),
                  ui.chart("rec-by-user"), ui.chart("rec-by-line"),
                  html.Div([html.H3(_("Biggest consumers")), html.Div(id="rec-top")], className="card")],
                 className="grid2"),
    ])


def render(ctx: Context, period: str | None, portals: Any) -> tuple[Any, ...]:
    """(quota text, storage, growth, by-portal and by-line figures) for the period and portals.

    One daily query covers both the period and the growth window of the estimate.
    """
    flt = page_filter(ctx, period, portals)
    now = ctx.now()
    first = controls.first_day(flt)
    window_first = view.today(ctx, flt.zone) - timedelta(days=GROWTH_WINDOW_DAYS)
    daily = ctx.data.get(queries.recording_bytes_daily,
                         flt.replace(start=local_start(min(first, window_first), flt.zone), hourly=False))
    in_period = figures.keep(daily, "day", lambda d: d >= first)
    used = ctx.data.get(dq.recording_bytes_total, tuple(flt.portals))
    quota = ctx.portals.quota(view.shown_portals(list(flt.portals), current_user().scope))
    lines = ctx.data.get(dq.recording_totals_by, "line", flt)
    return (quota_text(used, quota, days_until_full(used, quota, *growth_window(daily, now))),
            figures.storage_over_time(in_period), figures.growth_per_day(in_period),
            figures.storage_by_key(ctx.data.get(queries.recording_bytes_by, "portal", flt.replace(hourly=False),
                                                top=10), _("By portal")),
            figures.bars(lines, "key", "bytes", _("By line"), text=[fmt.size(b) for b in lines["bytes"]],
                         color=figures.PALETTE[4], drill_key="lines"))


def render_consumers(ctx: Context, period: str | None, portals: Any) -> tuple[Any, ...]:
    """(by-employee figure, biggest-consumers table): the one query that reads the calls themselves."""
    flt = page_filter(ctx, period, portals)
    users = ctx.data.get(dq.recording_totals_by, "user", flt, top=10)
    top_portals = ctx.data.get(dq.recording_totals_by, "portal", flt, top=5)
    rows = [(label, k, fmt.count(n), fmt.size(b))
            for label, frame in ((_("portal"), top_portals), (_("employee"), users.head(5)))
            for k, n, b in zip(frame["key"], frame["recordings"], frame["bytes"])]
    return (figures.bars(users, "key", "bytes", _("By employee (top 10)"), text=[fmt.size(b) for b in users["bytes"]],
                         color=figures.PALETTE[5], drill_key="users"),
            ui.text_table((_("by"), _("who"), _("recordings"), _("disk")), rows, "rec-top-table"))


def register(app: Any, ctx: Context) -> None:
    """Wire the page to the data stamp and the period bar (two callbacks, served in parallel)."""
    inputs = (Input("seq", "data"), Input("rec-period", "value"), Input("rec-portals", "value"))
    app.callback(Output("rec-quota", "children"), *[Output(g, "figure") for g in GRAPHS], *inputs)(
        lambda _seq, period, portals: render(ctx, period, portals))
    app.callback(Output("rec-by-user", "figure"), Output("rec-top", "children"), *inputs)(
        lambda _seq, period, portals: render_consumers(ctx, period, portals))
    register_portal_picker(app, ctx, "rec")
    register_links(app, "rec", ("rec-storage", "rec-growth", "rec-by-portal", "rec-by-user", "rec-by-line"))
