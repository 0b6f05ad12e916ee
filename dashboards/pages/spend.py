"""Spend: tariff spend by region over time, by line and direction, top destinations and
employees, totals per currency, and this period against the previous one."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
from dash import Input, Output, html

from dashboards import controls, figures, formatting as fmt, layout as ui
from dashboards.data import Context
from dashboards.pages.common import page_filter, register_portal_picker
from warehouse import dashboard_queries as dq

NAME, PATH, TITLE = "spend", "/spend", "Spend"
GRAPHS = ("spend-by-region", "spend-by-line", "spend-by-direction", "spend-destinations", "spend-comparison")


def layout(ctx: Context) -> html.Div:
    """Period bar, totals, then the charts."""
    return html.Div([
        html.H1(TITLE), ui.period_bar("sp"),
        html.Div([html.H3("Totals per currency"), html.Div(id="spend-totals")], className="card wide"),
        html.Div([ui.chart("spend-by-region", wide=True), ui.chart("spend-by-line"),
                  ui.chart("spend-by-direction"), ui.chart("spend-destinations"),
                  ui.chart("spend-employees"), ui.chart("spend-comparison")], className="grid2"),
    ])


def change(current: Decimal | None, previous: Decimal | None) -> str:
    """``+12.5 %`` from the previous amount to the current one (``new`` when there was none)."""
    if fmt.missing(previous) or previous == 0:
        return "new" if not fmt.missing(current) and current else "—"
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
                     fmt.money(row["cost"], cur), fmt.money(before.get(cur), cur), change(row["cost"], before.get(cur))))
    return rows


def render(ctx: Context, period: str | None, portals: Any) -> tuple[Any, ...]:
    """(totals table, then one figure per id of ``GRAPHS``) for the period and portals.

    One grouped query gives every breakdown of the period; one more, the previous period's totals.
    """
    flt = page_filter(ctx, period, portals)
    start, end = controls.previous_period(flt.start, flt.end)
    spend = ctx.data.get(dq.spend_breakdown, flt)
    part = {name: spend[spend["set"] == name] for name in dq.SPEND_SETS}
    current = part["currency"]
    previous = ctx.data.get(dq.spend_by, "currency", flt.replace(start=start, end=end))
    destinations = figures.keep(part["region"], "cost", lambda c: not fmt.missing(c) and c > 0).head(15)
    totals = ui.text_table(("currency", "calls", "billed minutes", "cost", "previous period", "change"),
                           totals_rows(current, previous), "spend-totals-table", empty="No spend in this period")
    return (totals,
            figures.spend_by_region_over_time(part["day_region"].rename(columns={"key": "region"})),
            figures.spend_by_dimension(part["line"], "Spend by line"),
            figures.spend_by_dimension(part["direction"], "Spend by direction"),
            figures.bars(destinations, "key", "cost", "Top destinations",
                         text=[fmt.money(c, cur) for c, cur in zip(destinations["cost"], destinations["currency"])]),
            figures.period_comparison(current, previous))


def render_employees(ctx: Context, period: str | None, portals: Any) -> Any:
    """The top employees by spend (the user_spend_daily rollup)."""
    employees = ctx.data.get(dq.top_users_by_cost, page_filter(ctx, period, portals), top=15)
    # One bar per employee of a portal: equal user ids of two portals are two people.
    employees = employees.assign(employee=[f"{u} · {p}" for u, p in zip(employees["user_id"], employees["portal_id"])])
    return figures.bars(employees, "employee", "cost", "Top employees by spend",
                        text=[fmt.money(c, cur) for c, cur in zip(employees["cost"], employees["currency"])],
                        color=figures.PALETTE[1])


def register(app: Any, ctx: Context) -> None:
    """Wire the totals and charts to the data stamp and the period bar (two callbacks, in parallel)."""
    inputs = (Input("seq", "data"), Input("sp-period", "value"), Input("sp-portals", "value"))
    app.callback(Output("spend-totals", "children"), *[Output(g, "figure") for g in GRAPHS], *inputs)(
        lambda _seq, period, portals: render(ctx, period, portals))
    app.callback(Output("spend-employees", "figure"), *inputs)(
        lambda _seq, period, portals: render_employees(ctx, period, portals))
    register_portal_picker(app, ctx, "sp")

