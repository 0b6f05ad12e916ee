"""Quality: answer rate and talk time per line, Controller bypasses per portal, hang-up causes,
and the offers each employee let ring out. Every bar opens the calls behind it."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import Input, Output, html

from dashboards import figures, labels
from dashboards import formatting as fmt
from dashboards import layout as ui
from dashboards.data import Context
from dashboards.i18n import N_, _
from dashboards.pages.common import page_filter, register_links, register_portal_picker
from warehouse import dashboard_queries as dq
from warehouse import queries

NAME, PATH, TITLE = "quality", "/quality", N_("Quality")
GRAPHS = ("qu-lines", "qu-bypass", "qu-causes", "qu-missed")
TOP_PORTALS = 20


def layout(ctx: Context, query: dict | None = None) -> html.Div:
    """Period bar (from the address), the per-line table, then the charts."""
    query = query or {}
    return html.Div([
        html.H1(_(TITLE)), ui.period_bar("qu", period=query.get("period"), chosen=query.get("portals")),
        html.Div([html.H3(_("Lines: answer rate (ASR) and average talk (ACD)")), html.Div(id="qu-lines-table")],
                 className="card wide"),
        html.Div([ui.chart(g) for g in GRAPHS], className="grid2"),
    ])


def line_rows(lines: pd.DataFrame) -> list[tuple[str, ...]]:
    """(line, calls, answered, ASR, ACD) per line, in the reader's words."""
    return [(labels.value("line", r["line"]) if not fmt.missing(r["line"]) else _("(none)"), fmt.count(r["calls"]),
             fmt.count(r["answered"]), fmt.percent(r["asr"]), fmt.seconds(r["acd_s"]))
            for r in lines.to_dict("records")]


def lines_figure(lines: pd.DataFrame) -> Any:
    """ASR per line, labelled with the ACD; a bar opens the line's calls."""
    lines = figures.keep(lines, "calls", lambda n: not fmt.missing(n) and n > 0)
    return figures.bars(lines, "line", "asr", _("Answered share per line (ASR)"),
                        names=[labels.value("line", k) for k in lines["line"]],
                        text=[f"{fmt.percent(a)} · ACD {fmt.seconds(d)}" for a, d in zip(lines["asr"], lines["acd_s"])],
                        drill_key="lines")


def bypass_figure(ctx: Context, portals: pd.DataFrame) -> Any:
    """Bypass rate per portal (the highest first); a bar opens the portal's bypassed calls."""
    portals = figures.keep(portals, "bypassed", lambda n: not fmt.missing(n) and n > 0).head(TOP_PORTALS)
    return figures.bars(portals, "portal_id", "bypass_rate", _("Calls bypassing the Controller, per portal"),
                        names=[ctx.portals.name(p) for p in portals["portal_id"]],
                        text=[_("{share} ({n} of {calls})").format(share=fmt.percent(r, 2), n=fmt.count(b),
                                                                   calls=fmt.count(c))
                              for r, b, c in zip(portals["bypass_rate"], portals["bypassed"], portals["calls"])],
                        color=figures.PALETTE[3],
                        drills=[figures.drill(portals=[p], controllers=["bypassed"]) for p in portals["portal_id"]])


def causes_figure(causes: pd.DataFrame) -> Any:
    """Calls per hang-up cause; a bar opens the calls that ended so."""
    return figures.bars(causes, "key", "calls", _("Hang-up causes"),
                        names=[labels.value("hangup_cause", k) if not fmt.missing(k) else _("(none)")
                               for k in causes["key"]],
                        color=figures.PALETTE[2], drill_key="causes")


def missed_figure(ctx: Context, missed: pd.DataFrame) -> Any:
    """Offers each employee let ring out; a bar opens that employee's calls."""
    return figures.bars(missed, "user_id", "missed", _("Offers not picked up, per employee"),
                        names=[f"{u} · {ctx.portals.name(p)}" for u, p in zip(missed["user_id"], missed["portal_id"])],
                        color=figures.PALETTE[5],
                        drills=[figures.drill(users=[u], portals=[p]) for u, p in
                                zip(missed["user_id"], missed["portal_id"])])


def render(ctx: Context, period: str | None, portals: Any) -> tuple[Any, ...]:
    """(per-line table, then one figure per id of ``GRAPHS``) for the period and portals."""
    flt = page_filter(ctx, period, portals)
    lines = ctx.data.get(queries.asr_acd_by_line, flt)
    table = ui.text_table((_("line"), _("calls"), _("answered"), "ASR", "ACD"), line_rows(lines), "qu-lines-grid",
                          empty=_("No calls in this period"))
    return (table, lines_figure(lines), bypass_figure(ctx, ctx.data.get(queries.bypass_rate_by_portal, flt)),
            causes_figure(ctx.data.get(dq.hangup_causes, flt)),
            missed_figure(ctx, ctx.data.get(dq.missed_offers_by_user, flt)))


def register(app: Any, ctx: Context) -> None:
    """Wire the table and charts to the data stamp and the period bar."""
    app.callback(Output("qu-lines-table", "children"), *[Output(g, "figure") for g in GRAPHS],
                 Input("seq", "data"), Input("qu-period", "value"), Input("qu-portals", "value"))(
        lambda _seq, period, portals: render(ctx, period, portals))
    register_portal_picker(app, ctx, "qu")
    register_links(app, "qu", GRAPHS)
