"""Pure functions from query rows (DataFrames) to plotly figures.

No I/O and no Dash here: every function takes the frame a query returned
and gives a figure, so each is unit-tested with a hand-made frame. Money
reaches plotly as floats for drawing only; every printed amount (hover,
labels) is formatted from the Decimal.

A figure is a plain dict (``{"data": [trace, ...], "layout": {...}}``, what
plotly.js reads), not a ``plotly.graph_objects.Figure``: building and validating
those objects in Python was most of the Spend page's render (~65 bar traces,
each property checked against plotly's schema), and the browser gets the
same JSON either way. What the validation would catch (a misspelt property)
the unit and browser tests catch here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pandas as pd

from dashboards import formatting as fmt
from dashboards.i18n import _

Figure = dict[str, Any]  # {"data": [trace dicts], "layout": {...}}: what plotly.js draws
PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
           "#ea580c", "#4b5563", "#0d9488", "#9333ea")
TOP_REGIONS = 10  # the rest is stacked as "other regions"
WEEKLY_AFTER_DAYS = 92
# plotly_white's look for the only traces and axes drawn here (bars and lines on x/y axes), without
# the rest of it (polar, ternary, 3-D and map axes, colour scales, 14 trace types): the template
# travels inside every figure (7 KB of JSON each, half the Spend page's answer), and plotly merges
# it in the browser for each of them.
LIGHT_TEMPLATE = {
    "layout": {
        "autotypenumbers": "strict", "font": {"color": "#2a3f5f"}, "hovermode": "closest",
        "hoverlabel": {"align": "left"}, "paper_bgcolor": "white", "plot_bgcolor": "white",
        "colorway": list(PALETTE), "title": {"x": 0.05},
        **{axis: {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "ticks": "", "title": {"standoff": 15},
                  "zerolinecolor": "#EBF0F8", "automargin": True, "zerolinewidth": 2} for axis in ("xaxis", "yaxis")},
        "annotationdefaults": {"arrowcolor": "#2a3f5f", "arrowhead": 0, "arrowwidth": 1},
        "shapedefaults": {"line": {"color": "#2a3f5f"}},
    },
    "data": {"bar": [{"marker": {"line": {"color": "white", "width": 0.5}}, "type": "bar"}]},
}
MARGIN = {"l": 48, "r": 16, "t": 40, "b": 40}
_LAYOUT = dict(template=LIGHT_TEMPLATE, margin=MARGIN, height=320,
               legend=dict(orientation="h", y=-0.2), font=dict(size=12))
CHAR_PX = 7.0  # the width of a character of the figures' 12-px font, about (labels and legends)


def figure(data: Iterable[dict[str, Any]] = (), title: str | None = None, **layout: Any) -> Figure:
    """A figure of ``data`` (trace dicts) on the common layout, ``layout`` keys replacing its own.

    The template is shared by every figure (read-only); the other defaults are copied.
    """
    merged = {key: dict(value) if isinstance(value, dict) and key != "template" else value
              for key, value in _LAYOUT.items()}
    merged.update(layout)
    if title is not None:
        merged["title"] = {"text": title}
    return {"data": list(data), "layout": merged}


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


def _label(value: Any, unknown: str | None = None) -> str:
    return (unknown or _("(none)")) if fmt.missing(value) else esc(value)


def when(value: Any) -> str:
    """A chart's time category: ``26 Nov`` for a day, ``14:00`` for an hour (never milliseconds)."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return fmt.hour(value)
    if isinstance(value, date):
        return fmt.short_day(value)
    return esc(value)


def day_of(value: Any) -> str | None:
    """The ISO day of a chart's time value (the drill-down's start and end)."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, (date, datetime)):
        return value.isoformat()[:10]
    return None


def drill(**values: Any) -> str:
    """A point's drill-down filter as JSON text (urlstate.drill reads it back)."""
    return json.dumps({k: v for k, v in values.items() if v not in (None, [], [None])}, sort_keys=True,
                      default=str)


def time_axis(fig: Figure, xs: Iterable[Any]) -> Figure:
    """Category labels in time order: days or hours, never a millisecond tick."""
    order = sorted(set(xs), key=lambda v: pd.Timestamp(v))
    fig["layout"]["xaxis"] = {**fig["layout"].get("xaxis", {}), "type": "category", "categoryorder": "array",
                              "categoryarray": [when(v) for v in order]}
    return fig


def empty(message: str, height: int = 320) -> Figure:
    """A blank figure that says why it is blank (no data in the filter, no data yet)."""
    return figure(height=height, xaxis={"visible": False}, yaxis={"visible": False},
                  annotations=[{"text": message, "showarrow": False, "font": {"size": 14, "color": "#6b7280"}}])


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


def spend_over_time(rows: pd.DataFrame, key: str = "region", title: str | None = None,
                    drill_key: str | None = "regions", top: int = TOP_REGIONS) -> Figure:
    """Stacked spend per time bucket (day, week or hour) and ``key`` (one stack per currency);
    a bar opens the calls of that day and key."""
    rows = keep(rows, "cost", lambda c: not fmt.missing(c) and c != 0)
    if not len(rows):
        return empty(_("No spend in this period"))
    currencies = sorted(rows["currency"].map(_label).unique())
    hourly = isinstance(rows["day"].iloc[0], (datetime, pd.Timestamp))
    long = len(set(rows["day"])) > WEEKLY_AFTER_DAYS and not hourly
    unit = _("per hour") if hourly else _("per week") if long else _("per day")
    parts = rows.assign(k=rows[key].map(_label), currency=rows["currency"].map(_label),
                        day=weeks_if_long(rows["day"]) if long else rows["day"])
    other = _("other regions") if key == "region" else _("others")
    biggest = set(parts.groupby("k")["cost"].sum().sort_values(ascending=False).index[:top])
    parts["k"] = parts["k"].map(lambda r: r if r in biggest else other)
    raw = dict(zip(rows[key].map(_label), rows[key]))
    by = parts.groupby(["currency", "k", "day"], as_index=False)["cost"].sum()
    order = by.groupby(["currency", "k"])["cost"].sum().sort_values(ascending=False).index
    # Each bucket's label and its bounds for the drill-down, once per bucket rather than per bar.
    labels = {d: when(d) for d in set(parts["day"])}
    bounds = {d: (day_of(d), None if long else day_of(d)) for d in labels}
    traces = []
    for n, ((currency, k), part) in enumerate(_groups(by, ["currency", "k"], order)):
        days, costs = list(part["day"]), list(part["cost"])
        name = k if len(currencies) == 1 else f"{k} ({currency})"
        target = {drill_key: [raw[k]]} if k != other and drill_key and not fmt.missing(raw.get(k)) else {}
        traces.append({"type": "bar", "x": [labels[d] for d in days], "y": _numbers(costs), "name": name,
                       "marker": {"color": PALETTE[n % len(PALETTE)]},
                       "hovertext": [f"{labels[d]} · {name}: {fmt.money(c, currency)}" for d, c in zip(days, costs)],
                       "hoverinfo": "text",
                       "customdata": [drill(start=bounds[d][0], end=bounds[d][1], **target) for d in days],
                       "offsetgroup": currency, "legendgroup": currency})
    # Margins set from the labels rather than found by plotly (automargin draws a figure twice:
    # a third of the Spend page's drawing): the legend's longest name, rotated day labels.
    names = [t["name"] for t in traces]
    fig = figure(traces, f"{title or _('Spend by region')} {unit}", barmode="relative",
                 legend={"orientation": "v", "x": 1.02, "y": 1},
                 margin={"l": 72, "r": legend_width(names), "t": 40, "b": 64},
                 xaxis={"automargin": False}, yaxis={"automargin": False, "title": {"text": " / ".join(currencies)}})
    return time_axis(fig, parts["day"])


def _groups(frame: pd.DataFrame, columns: list[str], order: Iterable[Any]) -> Iterable[tuple[Any, pd.DataFrame]]:
    """(key, rows sorted by day) of ``frame`` grouped by ``columns``, in ``order`` of the keys."""
    groups = {k: g for k, g in frame.groupby(columns, sort=False)}
    for k in order:
        yield k, groups[k].sort_values("day")


def legend_width(names: Iterable[str], char_px: float = CHAR_PX) -> int:
    """Pixels a vertical legend of ``names`` takes at the right of a plot (font 12: ~7 px a
    character, plus the swatch and padding), within 80-320."""
    longest = max((len(str(n)) for n in names), default=0)
    return int(min(320, max(80, 56 + char_px * longest)))


LABEL_MAX_CHARS = 40  # longer bar labels: plotly finds the margin (automargin), whatever it costs


def label_width(labels: Iterable[str], char_px: float = CHAR_PX, wide_px: float = 8.5) -> int | None:
    """Pixels the category labels of a horizontal bar chart take at the left (font 12: ~7 px an
    ASCII character, ``wide_px`` any other, such as Cyrillic; plus the gap to the axis), within
    48-300; None when a label is longer than ``LABEL_MAX_CHARS`` (entities such as ``&lt;``
    count as the one character drawn)."""
    drawn = [_drawn(str(label)) for label in labels]
    if any(len(text) > LABEL_MAX_CHARS for text in drawn):
        return None
    widest = max((sum(char_px if ord(c) < 128 else wide_px for c in text) for text in drawn), default=0.0)
    return int(min(300, max(48, 16 + widest)))


def _drawn(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def spend_by_region_over_time(rows: pd.DataFrame) -> Figure:
    """Stacked spend per day and region (``spend_by_region_day_line``)."""
    return spend_over_time(rows, "region")


def bars(rows: pd.DataFrame, key: str, value: str, title: str, *, text: Iterable[str] | None = None,
         horizontal: bool = True, color: str = PALETTE[0], drill_key: str | None = None,
         drills: Iterable[str] | None = None, names: Iterable[str] | None = None) -> Figure:
    """One bar per row (``key`` -> ``value``), labelled with ``text`` (pre-formatted) if given;
    with ``drill_key`` a bar opens the calls whose ``drill_key`` filter is the bar's key (or
    ``drills``: each bar's own drill-down filter, figures.drill); ``names``: the bars' shown
    names instead of their keys.

    A horizontal chart's left margin comes from its labels' length (plotly's automargin would
    draw it twice), unless a label is too long to guess it well.
    """
    if not len(rows):
        return empty(_("{title}: nothing in this period").format(title=title))
    keys = [_label(k) for k in (rows[key] if names is None else names)]
    values = _numbers(rows[value])
    labels = [esc(t) for t in text] if text is not None else [fmt.count(v) for v in rows[value]]
    trace = {"type": "bar", "x": values if horizontal else keys, "y": keys if horizontal else values,
             "orientation": "h" if horizontal else "v", "marker": {"color": color}, "text": labels,
             "textposition": "auto", "hovertext": labels, "hoverinfo": "text+y" if horizontal else "text+x",
             "customdata": list(drills) if drills is not None else
             [drill(**{drill_key: [k]}) if drill_key and not fmt.missing(k) else "{}" for k in rows[key]]}
    if not horizontal:
        return figure([trace], title)
    left = label_width(keys)
    axes = {"yaxis": {"autorange": "reversed", "automargin": True}}
    if left is not None:
        axes = {"yaxis": {"autorange": "reversed", "automargin": False}, "xaxis": {"automargin": False},
                "margin": {**MARGIN, "l": left}}
    return figure([trace], title, height=max(220, 40 + 24 * len(keys)), **axes)


def spend_by_dimension(rows: pd.DataFrame, title: str, drill_key: str | None = None) -> Figure:
    """Spend per key and currency (``spend_by``), one bar per key, grouped by currency.

    Calls without a currency (internal, unrated) carry no money and are left out.
    """
    rows = keep(rows, "currency", lambda c: not fmt.missing(c))
    if not len(rows):
        return empty(_("{title}: nothing in this period").format(title=title))
    traces = []
    for n, currency in enumerate(sorted(rows["currency"].map(_label).unique())):
        part = rows[rows["currency"].map(_label) == currency]
        labels = [fmt.money(c, currency) for c in part["cost"]]  # the currency is escaped already
        traces.append({"type": "bar", "x": [_label(k) for k in part["key"]], "y": _numbers(part["cost"]),
                       "name": currency, "marker": {"color": PALETTE[n % len(PALETTE)]}, "text": labels,
                       "hovertext": labels, "hoverinfo": "text+x",
                       "customdata": [drill(**{drill_key: [k]}) if drill_key and not fmt.missing(k) else "{}"
                                      for k in part["key"]]})
    return figure(traces, title, barmode="group")


def period_comparison(current: pd.DataFrame, previous: pd.DataFrame) -> Figure:
    """This period's spend per currency against the previous period of the same length."""
    if not len(current) and not len(previous):
        return empty(_("No spend in this period or the previous one"))
    traces = []
    for n, (name, rows) in enumerate(((_("previous period"), previous), (_("this period"), current))):
        # Calls without a currency (internal, unrated) carry no money.
        rows = keep(rows, "key", lambda k: not fmt.missing(k))
        labels = [esc(fmt.money(c, cur)) for c, cur in zip(rows["cost"], rows["key"])]
        traces.append({"type": "bar", "x": [_label(k) for k in rows["key"]], "y": _numbers(rows["cost"]),
                       "name": name, "marker": {"color": ("#9ca3af", PALETTE[0])[n]}, "text": labels,
                       "hovertext": labels, "hoverinfo": "text+name"})
    return figure(traces, _("This period against the previous one"), barmode="group")


def storage_over_time(daily: pd.DataFrame) -> Figure:
    """Disk used by recordings at each day's end (``recording_bytes_daily.cumulative_bytes``)."""
    if not len(daily):
        return empty(_("No recordings in this period"))
    text = [fmt.size(v) for v in daily["cumulative_bytes"]]
    trace = {"type": "scatter", "x": [when(d) for d in daily["day"]], "y": _numbers(daily["cumulative_bytes"]),
             "mode": "lines+markers", "fill": "tozeroy", "line": {"color": PALETTE[4]}, "hovertext": text,
             "hoverinfo": "x+text",
             "customdata": [drill(start=day_of(d), end=day_of(d), recording="yes") for d in daily["day"]]}
    fig = figure([trace], _("Disk used by recordings (cumulative)"), yaxis={"title": {"text": _("bytes")}})
    return time_axis(fig, daily["day"])


def growth_per_day(daily: pd.DataFrame) -> Figure:
    """New recording bytes per day."""
    if not len(daily):
        return empty(_("No recordings in this period"))
    text = [fmt.size(v) for v in daily["bytes"]]
    trace = {"type": "bar", "x": [when(d) for d in daily["day"]], "y": _numbers(daily["bytes"]),
             "marker": {"color": PALETTE[5]}, "hovertext": text, "hoverinfo": "x+text",
             "customdata": [drill(start=day_of(d), end=day_of(d), recording="yes") for d in daily["day"]]}
    return time_axis(figure([trace], _("Recording growth per day")), daily["day"])


def storage_by_key(rows: pd.DataFrame, title: str) -> Figure:
    """Cumulative recording bytes per key over days (``recording_bytes_by``)."""
    if not len(rows):
        return empty(_("{title}: no recordings in this period").format(title=title))
    totals = rows.groupby("key")["bytes"].sum().sort_values(ascending=False)
    traces = []
    for n, key in enumerate(totals.index[:12]):
        part = rows[rows["key"] == key].sort_values("day")
        traces.append({"type": "scatter", "x": [when(d) for d in part["day"]],
                       "y": _numbers(part["cumulative_bytes"]), "name": _label(key), "mode": "lines+markers",
                       "line": {"color": PALETTE[n % len(PALETTE)]},
                       "hovertext": [fmt.size(v) for v in part["cumulative_bytes"]], "hoverinfo": "x+text+name",
                       "customdata": [drill(start=day_of(d), end=day_of(d), portals=[key], recording="yes")
                                      for d in part["day"]]})
    return time_axis(figure(traces, title), rows["day"])


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
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
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


def bypass_timeline(bypasses: pd.DataFrame, outages: pd.DataFrame, now: datetime) -> Figure:
    """Per portal: each bypassed call as a dot, each outage as a bar (red open, grey resolved)."""
    if not len(bypasses) and not len(outages):
        return empty(_("No Controller bypasses in this period"))
    traces: list[dict[str, Any]] = []
    for state, color in (("open", PALETTE[3]), ("resolved", "#9ca3af")):
        spans = [s for s in outage_spans(outages, now) if s["state"] == state]
        if spans:
            traces.append({
                "type": "bar", "base": [s["opened"] for s in spans],
                "x": [(s["end"] - s["opened"]).total_seconds() * 1000 for s in spans],
                "y": [_label(s["portal_id"]) for s in spans], "orientation": "h",
                "name": _("outage ({state})").format(state=_(state)), "marker": {"color": color}, "opacity": 0.5,
                "hovertext": [_("{portal}: outage {state} since {time}").format(
                    portal=_label(s["portal_id"]), state=_(state), time=fmt.timestamp(s["opened"])) for s in spans],
                "hoverinfo": "text"})
    if len(bypasses):
        traces.append({"type": "scatter", "x": list(bypasses["ts"]),
                       "y": [_label(p) for p in bypasses["portal_id"]], "mode": "markers",
                       "name": _("bypassed call"), "marker": {"color": PALETTE[2], "size": 7, "symbol": "diamond"},
                       "hovertext": [_label(c) for c in bypasses["call_id"]], "hoverinfo": "x+y+text",
                       "customdata": [drill(call=c) for c in bypasses["call_id"]]})
    portals = set(bypasses["portal_id"]) | set(outages["portal_id"])
    return figure(traces, _("Controller bypasses and outages per portal"),
                  height=max(260, 80 + 22 * len(portals)), barmode="overlay", xaxis={"type": "date"},
                  yaxis={"categoryorder": "category descending", "automargin": True})

