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
    return controls.options(ctx.data.lasting(dq.dimension_values, "portal", limit=1000))


def register_portal_picker(app: Any, ctx: Context, prefix: str) -> None:
    """Fill ``<prefix>-portals`` with the portals in the warehouse, refreshed with the data."""
    app.callback(Output(f"{prefix}-portals", "options"), Input("seq", "data"))(lambda _seq: portal_options(ctx))
