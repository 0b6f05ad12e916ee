"""Overview: the headline figures, each with a sparkline and a link to its page."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import Input, Output, html

from dashboards import figures, formatting as fmt, layout as ui
from dashboards.data import Context
from dashboards.pages.common import page_filter, register_portal_picker
from warehouse import dashboard_queries as dq, queries

NAME, PATH, TITLE = "overview", "/", "Overview"
CARDS = (("calls", "Calls", "/calls"), ("asr", "Answered (ASR)", "/calls"),
         ("acd", "Average talk (ACD)", "/calls"), ("spend-today", "Spend today", "/spend"),
         ("spend-month", "Spend this month", "/spend"), ("bypassed", "Calls bypassing the Controller", "/alerts"),
         ("storage", "Recording storage", "/recordings"))


def layout(ctx: Context) -> html.Div:
    """Period bar and one card per headline figure."""
    return html.Div([html.H1(TITLE), ui.period_bar("ov"),
                     html.Div([ui.kpi_card(*card) for card in CARDS], className="kpis", id="ov-cards")])


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
        "calls": (fmt.count(k["calls"]), f"{fmt.count(k['answered'])} answered", spark(daily["calls"])),
        "asr": (fmt.percent(k["asr"]), "answered / calls (incomplete excluded)", spark(daily["asr"])),
        "acd": (fmt.seconds(k["acd_s"]), "mean talk time of answered calls", spark(daily["acd_s"])),
        "spend-today": (fmt.money_by_currency(k["spend_today"]), "UTC day",
                        spark(spend["cost"], figures.PALETTE[1])),
        "spend-month": (fmt.money_by_currency(k["spend_month"]), "since the 1st, UTC",
                        spark(spend["cost"], figures.PALETTE[1])),
        "bypassed": (fmt.count(k["bypassed"]), _share(k["bypassed"], k["calls"]),
                     spark(daily["bypassed"], figures.PALETTE[3])),
        "storage": (fmt.size(k["recording_bytes"]), f"quota {fmt.size(ctx.settings.recording_quota_bytes)}",
                    spark(stored["cumulative_bytes"], figures.PALETTE[4])),
    }


def _share(part: int, whole: int) -> str:
    return f"{fmt.percent(part / whole, 2)} of calls" if whole else "no calls"


def register(app: Any, ctx: Context) -> None:
    """Wire the cards to the data stamp and the period bar."""
    outputs = [Output(f"kpi-{card}-{part}", prop) for card, _, _ in CARDS
               for part, prop in (("value", "children"), ("note", "children"), ("spark", "src"))]

    @app.callback(outputs, Input("seq", "data"), Input("ov-period", "value"), Input("ov-portals", "value"))
    def _update(_seq: Any, period: str, portals: Any) -> list[Any]:
        cards = render(ctx, period, portals)
        return [item for card, _, _ in CARDS for item in cards[card]]

    register_portal_picker(app, ctx, "ov")

