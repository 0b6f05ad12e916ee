"""Recordings: disk used over time, growth per day, by portal, employee and line, the
biggest consumers, and the days left until the recording quota is full."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any

from dash import Input, Output, html

from dashboards import figures, formatting as fmt, layout as ui
from dashboards.data import Context
from dashboards.pages.common import page_filter, register_portal_picker
from warehouse import dashboard_queries as dq, queries
from warehouse.filters import CallFilter

NAME, PATH, TITLE = "recordings", "/recordings", "Recordings"
GRAPHS = ("rec-storage", "rec-growth", "rec-by-portal", "rec-by-user", "rec-by-line")
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
    start = datetime.combine(now.date() - timedelta(days=days), time(0), tzinfo=timezone.utc)
    recent = [(d, b) for d, b in zip(daily["day"], daily["bytes"]) if d >= start.date()]
    if not recent:
        return 0, 0.0
    first = datetime.combine(min(d for d, _ in recent), time(0), tzinfo=timezone.utc)
    return sum(int(b) for _, b in recent), (now - max(start, first)).total_seconds() / 86400


def quota_text(used: int, quota: int, days: float | None) -> str:
    """The quota sentence of the page."""
    share = fmt.percent(used / quota) if quota else "—"
    head = f"{fmt.size(used)} of {fmt.size(quota)} used ({share})"
    if days is None:
        return head + " · no growth recently: no estimate"
    if days == 0:
        return head + " · the quota is full"
    return head + f" · full in about {days:,.0f} days at the growth of the last {GROWTH_WINDOW_DAYS} days".replace(",", " ")


def layout(ctx: Context) -> html.Div:
    """Period bar, quota line, charts and the biggest consumers."""
    return html.Div([
        html.H1(TITLE), ui.period_bar("rec"),
        html.Div(id="rec-quota", className="card wide quota"),
        html.Div([ui.chart("rec-storage"), ui.chart("rec-growth"), ui.chart("rec-by-portal"),
                  ui.chart("rec-by-user"), ui.chart("rec-by-line"),
                  html.Div([html.H3("Biggest consumers"), html.Div(id="rec-top")], className="card")],
                 className="grid2"),
    ])


def _top_rows(ctx: Context, flt: CallFilter) -> list[tuple[str, ...]]:
    rows = []
    for dimension, label in (("portal", "portal"), ("user", "employee")):
        top = ctx.data.get(dq.recording_totals_by, dimension, flt, top=5)
        rows += [(label, k, fmt.count(n), fmt.size(b)) for k, n, b in zip(top["key"], top["recordings"], top["bytes"])]
    return rows


def render(ctx: Context, period: str | None, portals: Any) -> tuple[Any, ...]:
    """(quota text, then one figure per id of ``GRAPHS``, then the top-consumers table)."""
    flt = page_filter(ctx, period, portals)
    daily = ctx.data.get(queries.recording_bytes_daily, flt)
    now = ctx.now().replace(second=0, microsecond=0)
    used = ctx.data.get(queries.kpis, flt, now=now)["recording_bytes"]
    recent_start = now.date() - timedelta(days=GROWTH_WINDOW_DAYS)
    growth = ctx.data.get(queries.recording_bytes_daily, flt.replace(start=recent_start, end=flt.end))
    window_bytes, window_days = growth_window(growth, ctx.now())
    quota = ctx.settings.recording_quota_bytes
    lines = ctx.data.get(dq.recording_totals_by, "line", flt)
    return (quota_text(used, quota, days_until_full(used, quota, window_bytes, window_days)),
            figures.storage_over_time(daily), figures.growth_per_day(daily),
            figures.storage_by_key(ctx.data.get(queries.recording_bytes_by, "portal", flt, top=10), "By portal"),
            figures.storage_by_key(ctx.data.get(queries.recording_bytes_by, "user", flt, top=10), "By employee"),
            figures.bars(lines, "key", "bytes", "By line", text=[fmt.size(b) for b in lines["bytes"]],
                         color=figures.PALETTE[4]),
            ui.text_table(("by", "who", "recordings", "disk"), _top_rows(ctx, flt), "rec-top-table"))


def register(app: Any, ctx: Context) -> None:
    """Wire the page to the data stamp and the period bar."""
    app.callback(Output("rec-quota", "children"), *[Output(g, "figure") for g in GRAPHS],
                 Output("rec-top", "children"),
                 Input("seq", "data"), Input("rec-period", "value"), Input("rec-portals", "value"))(
        lambda _seq, period, portals: render(ctx, period, portals))
    register_portal_picker(app, ctx, "rec")

