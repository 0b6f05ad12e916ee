"""Spend: tariff spend by region over time, by line and direction, top destinations and
employees, totals per currency, and this period against the previous one."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
from dash import Input, Output, html

from dashboards import figures, view
from dashboards import formatting as fmt
from dashboards import layout as ui
from dashboards.data import Context
from dashboards.i18n import N_, _
from dashboards.pages.common import page_filter, register_links, register_portal_picker
from warehouse import dashboard_queries as dq

NAME, PATH, TITLE = "spend", "/spend", N_("Spend")
GRAPHS = ("spend-by-region", "spend-by-line", "spend-by-direction", "spend-destinations", "spend-comparison",
          "spend-line-time", "spend-direction-time")


def layout(ctx: Context, query: dict | None = None) -> html.Div:
    """Period bar (from the address), totals, then the charts."""
    query = query or {}
    return html.Div([
        html.H1(_(TITLE)), ui.period_bar("sp", period=query.get("period"), chosen=query.get("portals")),
        html.Div([html.H3(_("Totals per currency")), html.Div(id="spend-totals")], className="card wide"),
        html.Div([ui.chart("spend-by-region", wide=True), ui.chart("spend-line-time"),
                  ui.chart("spend-direction-time"), ui.chart("spend-by-line"),
                  ui.chart("spend-by-direction"), ui.chart("spend-destinations"),
                  ui.chart("spend-employees"), ui.chart("spend-employees-time"),
                  ui.chart("spend-comparison")], className="grid2"),
    ])


def change(current: Decimal | None, previous: Decimal | None) -> str:
    """``+12.5 %`` from the previous amount to the current one (``new`` when there was none)."""
    if fmt.missing(previous) or previous == 0:
        return _("new") if not fmt.missing(current) and current else "—"
    delta = ((current or Decimal(0)) - previous) / previous
    return f"{'+' if delta >= 0 else ''}{fmt.percent(delta)}"


def totals_rows(current: pd.DataFrame, previous: pd.DataFrame) -> list[tuple[str, ...]]:
    """(currency, calls, billed minutes, cost, previous period's cost, change) per currency."""
    before = {k: c for k, c in zip(previous["key"], previous["cost"]) if not fmt.missing(k)}
    rows = []
    for row in current.to_dict("records"):
        if fmt.missing(row["key"]):
            continue  # internal and unrated calls: no currency, no money
        cur = row["key"]
        rows.append((cur, fmt.count(row["calls"]), fmt.count((row["billed_s"] or 0) // 60),
                     fmt.money(row["cost"], cur), fmt.money(before.get(cur), cur),
                     change(row["cost"], before.get(cur))))
    return rows


def render(ctx: Context, period: str | None, portals: Any) -> tuple[Any, ...]:
    """(totals table, then one figure per id of ``GRAPHS``) for the period and portals.

    One grouped query gives every breakdown of the period (over time too); one more, the previous
    period's totals.
    """
    flt = page_filter(ctx, period, portals)
    before = view.previous(flt)
    spend = ctx.data.get(dq.spend_breakdown, flt)
    part = {name: spend[spend["set"] == name] for name in dq.SPEND_SETS}
    current = part["currency"]
    previous = ctx.data.get(dq.spend_by, "currency", before)
    destinations = figures.keep(part["region"], "cost", lambda c: not fmt.missing(c) and c > 0).head(15)
    totals = ui.text_table((_("currency"), _("calls"), _("billed minutes"), _("cost"), _("previous period"),
                            _("change")), totals_rows(current, previous), "spend-totals-table",
                           empty=_("No spend in this period"))
    lines, directions = (part[name][part[name]["day"].notna()] for name in ("day_line", "day_direction"))
    return (totals,
            figures.spend_by_region_over_time(part["day_region"].rename(columns={"key": "region"})),
            figures.spend_by_dimension(part["line"], _("Spend by line"), "lines"),
            figures.spend_by_dimension(part["direction"], _("Spend by direction"), "directions"),
            figures.bars(destinations, "key", "cost", _("Top destinations"),
                         text=[fmt.money(c, cur) for c, cur in zip(destinations["cost"], destinations["currency"])],
                         drill_key="regions"),
            figures.period_comparison(current, previous),
            figures.spend_over_time(lines, "key", _("Spend by line"), "lines"),
            figures.spend_over_time(directions, "key", _("Spend by direction"), "directions"))


def render_employees(ctx: Context, period: str | None, portals: Any) -> tuple[Any, Any]:
    """The top employees by spend, and their spend over time (the user_spend_daily rollup)."""
    flt = page_filter(ctx, period, portals)
    employees = ctx.data.get(dq.top_users_by_cost, flt, top=15)
    # One bar per employee of a portal: equal user ids of two portals are two people.
    employees = employees.assign(employee=[f"{u} · {p}" for u, p in zip(employees["user_id"], employees["portal_id"])])
    daily = ctx.data.get(dq.employee_spend_daily, flt, top=8)
    return (figures.bars(employees, "employee", "cost", _("Top employees by spend"),
                         text=[fmt.money(c, cur) for c, cur in zip(employees["cost"], employees["currency"])],
                         color=figures.PALETTE[1]),
            figures.spend_over_time(daily, "key", _("Spend of the top employees"), None))


def register(app: Any, ctx: Context) -> None:
    """Wire the totals and charts to the data stamp and the period bar (two callbacks, in parallel)."""
    inputs = (Input("seq", "data"), Input("sp-period", "value"), Input("sp-portals", "value"))
    app.callback(Output("spend-totals", "children"), *[Output(g, "figure") for g in GRAPHS], *inputs)(
        lambda _seq, period, portals: render(ctx, period, portals))
    app.callback(Output("spend-employees", "figure"), Output("spend-employees-time", "figure"), *inputs)(
        lambda _seq, period, portals: render_employees(ctx, period, portals))
    register_portal_picker(app, ctx, "sp")
    register_links(app, "sp", GRAPHS)

