"""Overview: the headline figures, each with a sparkline and a link to its page."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import Input, Output, html

from dashboards import figures
from dashboards import formatting as fmt
from dashboards import layout as ui
from dashboards.access import current_user
from dashboards.data import Context
from dashboards.i18n import N_, _
from dashboards.pages.common import page_filter, register_links, register_portal_picker
from warehouse import dashboard_queries as dq
from warehouse import queries

NAME, PATH, TITLE = "overview", "/", N_("Overview")
CARDS = (("calls", N_("Calls"), "/calls"), ("asr", N_("Answered (ASR)"), "/calls?statuses=answered"),
         ("acd", N_("Average talk (ACD)"), "/calls?statuses=answered"), ("spend-today", N_("Spend today"), "/spend"),
         ("spend-month", N_("Spend this month"), "/spend"),
         ("bypassed", N_("Calls bypassing the Controller"), "/calls?controllers=bypassed"),
         ("storage", N_("Recording storage"), "/recordings"))


def layout(ctx: Context, query: dict | None = None) -> html.Div:
    """Period bar (from the address) and one card per headline figure."""
    query = query or {}
    return html.Div([html.H1(_(TITLE)), ui.period_bar("ov", period=query.get("period"), chosen=query.get("portals")),
                     html.Div([ui.kpi_card(cid, _(title), href) for cid, title, href in CARDS], className="kpis",
                              id="ov-cards")])


def _main_currency_daily(spend: pd.DataFrame) -> pd.DataFrame:
    """Daily cost in the currency with the biggest spend (the sparkline cannot add currencies)."""
    spend = figures.keep(spend, "currency", lambda c: not fmt.missing(c))
    if not len(spend):
        return pd.DataFrame({"day": [], "cost": []})
    main = spend.groupby("currency")["cost"].sum().idxmax()
    return spend[spend["currency"] == main].groupby("day", as_index=False)["cost"].sum()


def render(ctx: Context, period: str | None, portals: Any) -> dict[str, tuple[str, str, Any]]:
    """card id -> (value text, note text, sparkline image) for the period and portals."""
    flt = page_filter(ctx, period, portals)
    k = ctx.data.get(queries.kpis, flt, now=ctx.now().replace(second=0, microsecond=0))
    daily = ctx.data.get(dq.daily_kpis, flt)
    spend = _main_currency_daily(ctx.data.get(queries.spend_by_region_day_line, flt))
    stored = ctx.data.get(queries.recording_bytes_daily, flt)
    spark = figures.sparkline_svg
    return {
        "calls": (fmt.count(k["calls"]), _("{n} answered").format(n=fmt.count(k["answered"])),
                  spark(daily["calls"])),
        "asr": (fmt.percent(k["asr"]), _("answered / calls (incomplete excluded)"), spark(daily["asr"])),
        "acd": (fmt.seconds(k["acd_s"]), _("mean talk time of answered calls"), spark(daily["acd_s"])),
        "spend-today": (fmt.money_by_currency(k["spend_today"]), _("today, {zone}").format(zone=flt.zone),
                        spark(spend["cost"], figures.PALETTE[1])),
        "spend-month": (fmt.money_by_currency(k["spend_month"]), _("since the 1st, {zone}").format(zone=flt.zone),
                        spark(spend["cost"], figures.PALETTE[1])),
        "bypassed": (fmt.count(k["bypassed"]), _share(k["bypassed"], k["calls"]),
                     spark(daily["bypassed"], figures.PALETTE[3])),
        "storage": (fmt.size(k["recording_bytes"]),
                    _("quota {size}").format(size=fmt.size(ctx.portals.quota(_shown(flt)))),
                    spark(stored["cumulative_bytes"], figures.PALETTE[4])),
    }


def _shown(flt: Any) -> Any:
    from dashboards import view

    return view.shown_portals(list(flt.portals), current_user().scope)


def _share(part: int, whole: int) -> str:
    return _("{share} of calls").format(share=fmt.percent(part / whole, 2)) if whole else _("no calls")


def register(app: Any, ctx: Context) -> None:
    """Wire the cards to the data stamp and the period bar."""
    outputs = [Output(f"kpi-{card}-{part}", prop) for card, _, _ in CARDS
               for part, prop in (("value", "children"), ("note", "children"), ("spark", "src"))]

    @app.callback(outputs, Input("seq", "data"), Input("ov-period", "value"), Input("ov-portals", "value"))
    def _update(_seq: Any, period: str, portals: Any) -> list[Any]:
        cards = render(ctx, period, portals)
        return [item for card, _, _ in CARDS for item in cards[card]]

    register_portal_picker(app, ctx, "ov")
    register_links(app, "ov", ())

