"""Callbacks every analytics page shares: its portal picker options and its filter."""

from __future__ import annotations

from typing import Any

from dash import Input, Output

from dashboards import controls
from dashboards.data import Context
from warehouse import dashboard_queries as dq
from warehouse.filters import CallFilter


def page_filter(ctx: Context, period: Any, portals: Any) -> CallFilter:
    """The filter of a period bar: the named period ending today (in the view's zone) and the
    chosen portals.

    The controls offer nothing else; forged values (a request not from the page) fall back to
    the default period and every portal rather than failing the callback.
    """
    from dashboards import view

    try:
        return view.filter_of(ctx, {"period": period, "portals": portals})
    except controls.FilterError:
        return view.filter_of(ctx, {})


def portal_options(ctx: Context) -> list[dict[str, str]]:
    """Every portal that has calls, for the portal pickers (a new portal shows up within 30 s)."""
    ids = ctx.data.lasting(dq.dimension_values, "portal", limit=1000)
    return [{"label": p if ctx.portals.name(p) == p else f"{ctx.portals.name(p)} ({p})", "value": p} for p in ids]


def register_portal_picker(app: Any, ctx: Context, prefix: str) -> None:
    """Fill ``<prefix>-portals`` with the portals in the warehouse, refreshed with the data."""
    app.callback(Output(f"{prefix}-portals", "options"), Input("seq", "data"))(lambda _seq: portal_options(ctx))


def register_links(app: Any, prefix: str, graphs: tuple[str, ...]) -> None:
    """Drill-down and bookmarks of a page with a period bar: a click on a point of one of
    ``graphs`` opens the call table filtered to it; a change of period or portals is written to
    the address."""

    from dashboards import urlstate

    if graphs:
        _register_drill(app, prefix, graphs)

    @app.callback(Output("url-sync", "search", allow_duplicate=True), Input(f"{prefix}-period", "value"),
                  Input(f"{prefix}-portals", "value"), prevent_initial_call=True)
    def _bookmark(period: Any, portals: Any) -> str:
        from dashboards import view

        return urlstate.search_of({"period": period if isinstance(period, str) else None,
                                   "portals": list(view.chosen(portals))})


def _register_drill(app: Any, prefix: str, graphs: tuple[str, ...]) -> None:
    from dash import State, no_update
    from dash import ctx as dash_ctx

    from dashboards import urlstate

    @app.callback(Output("go", "href", allow_duplicate=True), *[Input(g, "clickData") for g in graphs],
                  State(f"{prefix}-period", "value"), State(f"{prefix}-portals", "value"), prevent_initial_call=True)
    def _drill(*args: Any) -> Any:
        clicked = next((a for a in args[:-2] if a), None)
        if dash_ctx.triggered and dash_ctx.triggered[0].get("value"):
            clicked = dash_ctx.triggered[0]["value"]
        href = urlstate.drill(clicked, {"period": args[-2], "portals": args[-1]})
        return href or no_update
