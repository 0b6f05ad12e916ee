"""Pure functions from query rows (DataFrames) to plotly figures.

No I/O and no Dash here: every function takes the frame a query returned
and gives a figure, so each is unit-tested with a hand-made frame. Money
reaches plotly as floats for drawing only; every printed amount (hover,
labels) is formatted from the Decimal.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

import orjson
import pandas as pd
import plotly.graph_objects as go

from dashboards import formatting as fmt

PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
           "#ea580c", "#4b5563", "#0d9488", "#9333ea")
TOP_REGIONS = 10  # the rest is stacked as "other regions"
WEEKLY_AFTER_DAYS = 92
_LAYOUT = dict(template="plotly_white", margin=dict(l=48, r=16, t=40, b=40), height=320,
               legend=dict(orientation="h", y=-0.2), font=dict(size=12))


def keep(rows: pd.DataFrame, column: str, wanted: Callable[[Any], bool]) -> pd.DataFrame:
    """The rows whose ``column`` value is ``wanted`` (an empty frame keeps its columns)."""
    return rows.loc[[bool(wanted(v)) for v in rows[column]]] if len(rows) else rows


def _numbers(values: Iterable[Any]) -> list[float | None]:
    return [None if fmt.missing(v) else float(v) for v in values]


def esc(text: Any) -> str:
    """Text from the data made inert for plotly, which reads a few HTML tags in labels.

    Plotly shows the entities as the characters they stand for, so the reader sees the
    text exactly as stored, and no tag (or link) in it is ever interpreted.
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _label(value: Any, unknown: str = "(none)") -> str:
    return unknown if fmt.missing(value) else esc(value)


def empty(message: str, height: int = 320) -> go.Figure:
    """A blank figure that says why it is blank (no data in the filter, no data yet)."""
    fig = go.Figure(layout=dict(_LAYOUT, height=height))
    fig.add_annotation(text=message, showarrow=False, font=dict(size=14, color="#6b7280"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def sparkline_svg(values: Iterable[Any], color: str = PALETTE[0], width: int = 200, height: int = 48) -> str:
    """A tiny area chart as an SVG data URI for a KPI card (no plotly: seven cards draw at once).

    Built only from numbers (no text from the data), shown through an <img>, where SVG runs no script.
    """
    ys = [v for v in _numbers(values)]
    points = [(i, y) for i, y in enumerate(ys) if y is not None]
    body = ""
    if points:
        low, high = min(0.0, *(y for _, y in points)), max(y for _, y in points)
        span_y, span_x = (high - low) or 1.0, max(1, len(ys) - 1)
        xy = [(2 + (width - 4) * i / span_x, height - 2 - (height - 4) * (y - low) / span_y) for i, y in points]
        if len(xy) == 1:
            xy = [(2, xy[0][1]), (width - 2, xy[0][1])]
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        area = f"{xy[0][0]:.1f},{height} {line} {xy[-1][0]:.1f},{height}"
        body = (f'<polygon points="{area}" fill="{color}" fill-opacity="0.15"/>'
                f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'preserveAspectRatio="none">{body}</svg>')
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def weeks_if_long(days: pd.Series) -> pd.Series:
    """Days as they are, or as the Monday of their week when they span more than ``WEEKLY_AFTER_DAYS``
    (a year of daily stacks is unreadable and slow to draw)."""
    if len(set(days)) <= WEEKLY_AFTER_DAYS:
        return days
    return days.map(lambda d: d - timedelta(days=d.weekday()))


def spend_by_region_over_time(rows: pd.DataFrame) -> go.Figure:
    """Stacked daily spend per region (one stack per currency) from ``spend_by_region_day_line``."""
    rows = keep(rows, "cost", lambda c: not fmt.missing(c) and c != 0)
    if not len(rows):
        return empty("No spend in this period")
    currencies = sorted(rows["currency"].map(_label).unique())
    long = len(set(rows["day"])) > WEEKLY_AFTER_DAYS
    fig = go.Figure(layout=dict(_LAYOUT, title="Spend by region per " + ("week" if long else "day")))
    regions = rows.assign(region=rows["region"].map(_label), currency=rows["currency"].map(_label),
                          day=weeks_if_long(rows["day"]))
    biggest = set(regions.groupby("region")["cost"].sum().sort_values(ascending=False).index[:TOP_REGIONS])
    regions["region"] = regions["region"].map(lambda r: r if r in biggest else "other regions")
    by = regions.groupby(["currency", "region", "day"], as_index=False)["cost"].sum()
    order = by.groupby(["currency", "region"])["cost"].sum().sort_values(ascending=False).index
    for n, (currency, region) in enumerate(order):
        part = by[(by["currency"] == currency) & (by["region"] == region)].sort_values("day")
        name = region if len(currencies) == 1 else f"{region} ({currency})"
        fig.add_trace(go.Bar(x=list(part["day"]), y=_numbers(part["cost"]), name=name,
                             marker_color=PALETTE[n % len(PALETTE)],
                             customdata=[fmt.money(c, currency) for c in part["cost"]],  # escaped
                             hovertemplate="%{x}<br>" + name + ": %{customdata}<extra></extra>",
                             offsetgroup=currency, legendgroup=currency))
    fig.update_layout(barmode="relative", yaxis_title=" / ".join(currencies),
                      legend=dict(orientation="v", x=1.02, y=1))
    return fig


def bars(rows: pd.DataFrame, key: str, value: str, title: str, *, text: Iterable[str] | None = None,
         horizontal: bool = True, color: str = PALETTE[0]) -> go.Figure:
    """One bar per row (``key`` -> ``value``), labelled with ``text`` (pre-formatted) if given."""
    if not len(rows):
        return empty(f"{title}: nothing in this period")
    keys = [_label(k) for k in rows[key]]
    values = _numbers(rows[value])
    labels = [esc(t) for t in text] if text is not None else [fmt.count(v) for v in rows[value]]
    trace = go.Bar(x=values if horizontal else keys, y=keys if horizontal else values,
                   orientation="h" if horizontal else "v", marker_color=color, text=labels,
                   textposition="auto", hovertext=labels, hoverinfo="text+y" if horizontal else "text+x")
    fig = go.Figure(trace, layout=dict(_LAYOUT, title=title))
    if horizontal:
        fig.update_yaxes(autorange="reversed", automargin=True)
        fig.update_layout(height=max(220, 40 + 24 * len(keys)))
    return fig


def spend_by_dimension(rows: pd.DataFrame, title: str) -> go.Figure:
    """Spend per key and currency (``spend_by``), one bar per key, grouped by currency.

    Calls without a currency (internal, unrated) carry no money and are left out.
    """
    rows = keep(rows, "currency", lambda c: not fmt.missing(c))
    if not len(rows):
        return empty(f"{title}: nothing in this period")
    fig = go.Figure(layout=dict(_LAYOUT, title=title, barmode="group"))
    for n, currency in enumerate(sorted(rows["currency"].map(_label).unique())):
        part = rows[rows["currency"].map(_label) == currency]
        labels = [fmt.money(c, currency) for c in part["cost"]]  # the currency is escaped already
        fig.add_trace(go.Bar(x=[_label(k) for k in part["key"]], y=_numbers(part["cost"]), name=currency,
                             marker_color=PALETTE[n % len(PALETTE)], text=labels, hovertext=labels,
                             hoverinfo="text+x"))
    return fig


def period_comparison(current: pd.DataFrame, previous: pd.DataFrame) -> go.Figure:
    """This period's spend per currency against the previous period of the same length."""
    if not len(current) and not len(previous):
        return empty("No spend in this period or the previous one")
    fig = go.Figure(layout=dict(_LAYOUT, title="This period against the previous one", barmode="group"))
    for n, (name, rows) in enumerate((("previous period", previous), ("this period", current))):
        # Calls without a currency (internal, unrated) carry no money.
        rows = keep(rows, "key", lambda k: not fmt.missing(k))
        labels = [esc(fmt.money(c, cur)) for c, cur in zip(rows["cost"], rows["key"])]
        fig.add_trace(go.Bar(x=[_label(k) for k in rows["key"]], y=_numbers(rows["cost"]), name=name,
                             marker_color=("#9ca3af", PALETTE[0])[n], text=labels, hovertext=labels,
                             hoverinfo="text+name"))
    return fig


def storage_over_time(daily: pd.DataFrame) -> go.Figure:
    """Disk used by recordings at each day's end (``recording_bytes_daily.cumulative_bytes``)."""
    if not len(daily):
        return empty("No recordings in this period")
    text = [fmt.size(v) for v in daily["cumulative_bytes"]]
    fig = go.Figure(go.Scatter(x=list(daily["day"]), y=_numbers(daily["cumulative_bytes"]), mode="lines+markers",
                               fill="tozeroy", line=dict(color=PALETTE[4]), hovertext=text, hoverinfo="x+text"),
                    layout=dict(_LAYOUT, title="Disk used by recordings (cumulative)"))
    fig.update_yaxes(title="bytes")
    return fig


def growth_per_day(daily: pd.DataFrame) -> go.Figure:
    """New recording bytes per day."""
    if not len(daily):
        return empty("No recordings in this period")
    text = [fmt.size(v) for v in daily["bytes"]]
    return go.Figure(go.Bar(x=list(daily["day"]), y=_numbers(daily["bytes"]), marker_color=PALETTE[5],
                            hovertext=text, hoverinfo="x+text"),
                     layout=dict(_LAYOUT, title="Recording growth per day"))


def storage_by_key(rows: pd.DataFrame, title: str) -> go.Figure:
    """Cumulative recording bytes per key over days (``recording_bytes_by``)."""
    if not len(rows):
        return empty(f"{title}: no recordings in this period")
    fig = go.Figure(layout=dict(_LAYOUT, title=title))
    totals = rows.groupby("key")["bytes"].sum().sort_values(ascending=False)
    for n, key in enumerate(totals.index[:12]):
        part = rows[rows["key"] == key].sort_values("day")
        fig.add_trace(go.Scatter(x=list(part["day"]), y=_numbers(part["cumulative_bytes"]), name=_label(key),
                                 mode="lines", line=dict(color=PALETTE[n % len(PALETTE)]),
                                 hovertext=[fmt.size(v) for v in part["cumulative_bytes"]],
                                 hoverinfo="x+text+name"))
    return fig


def _detail(value: Any) -> dict[str, Any]:
    try:
        parsed = orjson.loads(value) if isinstance(value, (str, bytes)) else value
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def outage_spans(outages: pd.DataFrame, now: datetime) -> list[dict[str, Any]]:
    """(portal, opened, resolved or None, state) of each controller_outage alert, from its detail."""
    spans = []
    for row in outages.itertuples(index=False):
        detail = _detail(row.detail)
        opened = _instant(detail.get("opened_at")) or row.ts
        resolved = _instant(detail.get("resolved_at"))
        spans.append({"portal_id": row.portal_id, "opened": opened, "resolved": resolved,
                      "end": resolved or now, "state": row.state or detail.get("state") or "open"})
    return spans


def bypass_timeline(bypasses: pd.DataFrame, outages: pd.DataFrame, now: datetime) -> go.Figure:
    """Per portal: each bypassed call as a dot, each outage as a bar (red open, grey resolved)."""
    if not len(bypasses) and not len(outages):
        return empty("No Controller bypasses in this period")
    fig = go.Figure(layout=dict(_LAYOUT, title="Controller bypasses and outages per portal"))
    for state, color in (("open", PALETTE[3]), ("resolved", "#9ca3af")):
        spans = [s for s in outage_spans(outages, now) if s["state"] == state]
        if spans:
            fig.add_trace(go.Bar(
                base=[s["opened"] for s in spans], x=[(s["end"] - s["opened"]).total_seconds() * 1000 for s in spans],
                y=[_label(s["portal_id"]) for s in spans], orientation="h", name=f"outage ({state})",
                marker_color=color, opacity=0.5,
                hovertext=[f"{_label(s['portal_id'])}: outage {state} since {fmt.timestamp(s['opened'])}"
                           for s in spans],
                hoverinfo="text"))
    if len(bypasses):
        fig.add_trace(go.Scatter(x=list(bypasses["ts"]), y=[_label(p) for p in bypasses["portal_id"]],
                                 mode="markers",
                                 name="bypassed call", marker=dict(color=PALETTE[2], size=7, symbol="diamond"),
                                 hovertext=[_label(c) for c in bypasses["call_id"]], hoverinfo="x+y+text"))
    portals = set(bypasses["portal_id"]) | set(outages["portal_id"])
    fig.update_layout(height=max(260, 80 + 22 * len(portals)), barmode="overlay")
    fig.update_xaxes(type="date")
    fig.update_yaxes(categoryorder="category descending", automargin=True)
    return fig

