"""Call detail: filters, a server-side paged and sorted table, the CSV download, one call opened."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from dash import Input, Output, State, dcc, html, no_update
from dash import ctx as dash_ctx

from dashboards import calls_grid, controls, urlstate, view
from dashboards import formatting as fmt
from dashboards.access import current_user
from dashboards.data import Context
from dashboards.i18n import N_, _
from dashboards.pages import call_view
from warehouse import dashboard_queries as dq
from warehouse import queries
from warehouse.filters import SORT_COLUMNS

NAME, PATH, TITLE = "calls", "/calls", N_("Call detail")
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="call-count")
PAGE_SIZE = 50
DEFAULT_SORT = {"column": "started_at", "descending": True}
DOWNLOAD_PATH = "/download/calls.csv"
# (values key, component id, property) of every filter control, in callback order.
CONTROLS = (("start", "calls-dates", "start_date"), ("end", "calls-dates", "end_date"),
            ("portals", "calls-portals", "value"), ("users", "calls-users", "value"),
            ("lines", "calls-lines", "value"), ("directions", "calls-directions", "value"),
            ("statuses", "calls-statuses", "value"), ("regions", "calls-regions", "value"),
            ("controllers", "calls-controllers", "value"), ("recording", "calls-recording", "value"),
            ("min_talk_s", "calls-min-talk", "value"), ("max_talk_s", "calls-max-talk", "value"),
            ("min_cost", "calls-min-cost", "value"), ("max_cost", "calls-max-cost", "value"),
            ("number", "calls-number", "value"), ("causes", "calls-causes", "value"))
# (column, header, text of a row) of the table; times in the view's zone.
COLUMNS = (("started_at", N_("Started"), lambda r, z: fmt.timestamp(r["started_at"], z)),
           ("portal_id", N_("Portal"), lambda r, z: r["portal_id"]),
           ("direction", N_("Direction"), lambda r, z: r["direction"]),
           ("line", N_("Line"), lambda r, z: r["line"]), ("from", N_("From"), lambda r, z: r["from"]),
           ("to", N_("To"), lambda r, z: r["to"]), ("user_id", N_("Employee"), lambda r, z: r["user_id"]),
           ("region", N_("Region"), lambda r, z: r["region"]), ("status", N_("Status"), lambda r, z: r["status"]),
           ("talk_s", N_("Talk"), lambda r, z: fmt.seconds(r["talk_s"])),
           ("cost", N_("Cost"), lambda r, z: fmt.money(r["cost"], r["currency"])),
           ("controller", N_("Controller"), lambda r, z: r["controller"]),
           ("recording_bytes", N_("Recording"),
            lambda r, z: fmt.size(r["recording_bytes"]) if r["recording_bytes"] else ""))


def _multi(component_id: str, placeholder: str, values: tuple[str, ...] | None = None,
           chosen: Any = None) -> dcc.Dropdown:
    options = controls.options(values) if values else []
    picked = [v for v in (chosen or []) if isinstance(v, str)]
    if not values:  # options come later from the data: the chosen ones must be offered already
        options = controls.options(picked)
    return dcc.Dropdown(id=component_id, multi=True, placeholder=placeholder, options=options, value=picked)


def _number(component_id: str, placeholder: str, value: Any = None) -> dcc.Input:
    return dcc.Input(id=component_id, type="number", min=0, placeholder=placeholder, debounce=True,
                     className="num", value=value)


def initial_days(ctx: Context, query: dict[str, Any]) -> tuple[str, str]:
    """The first and last day the date picker starts with: the address's, else its period's."""
    try:
        flt = view.filter_of(ctx, query)
    except controls.FilterError:
        flt = view.filter_of(ctx, {})
    return controls.first_day(flt).isoformat(), controls.last_day(flt).isoformat()


def filters_panel(ctx: Context, query: dict[str, Any] | None = None) -> html.Div:
    """Every filter of the call table, starting from the address's values."""
    q = query or {}
    first, last = initial_days(ctx, q)
    return html.Div([
        dcc.DatePickerRange(id="calls-dates", start_date=first, end_date=last, display_format="YYYY-MM-DD"),
        _multi("calls-portals", _("Portal"), chosen=q.get("portals")),
        _multi("calls-users", _("Employee"), chosen=q.get("users")),
        _multi("calls-lines", _("Line"), controls.LINES, q.get("lines")),
        _multi("calls-directions", _("Direction"), controls.DIRECTIONS, q.get("directions")),
        _multi("calls-statuses", _("Status"), controls.STATUSES, q.get("statuses")),
        _multi("calls-regions", _("Region"), chosen=q.get("regions")),
        _multi("calls-controllers", _("Controller verdict"), controls.CONTROLLER, q.get("controllers")),
        _multi("calls-causes", _("Hang-up cause"), controls.CAUSES, q.get("causes")),
        dcc.RadioItems(id="calls-recording", value=q.get("recording") if q.get("recording") in ("yes", "no") else "",
                       inline=True, className="recording-filter",
                       options=[{"label": _("any"), "value": ""}, {"label": _("recorded"), "value": "yes"},
                                {"label": _("not recorded"), "value": "no"}]),
        _number("calls-min-talk", _("talk ≥ s"), q.get("min_talk_s")),
        _number("calls-max-talk", _("talk ≤ s"), q.get("max_talk_s")),
        _number("calls-min-cost", _("cost ≥"), q.get("min_cost")),
        _number("calls-max-cost", _("cost ≤"), q.get("max_cost")),
        dcc.Input(id="calls-number", type="search", placeholder=_("Number contains…"), debounce=True,
                  className="search", maxLength=64,
                  value=q.get("number") if isinstance(q.get("number"), str) else None),
    ], className="filters")


def layout(ctx: Context, query: dict[str, Any] | None = None) -> html.Div:
    """Filters (from the address), table with pager and download, and the opened call."""
    can_download = current_user().can_download
    return html.Div([
        html.H1(_(TITLE)), filters_panel(ctx, query),
        dcc.Store(id="calls-sort", data={"column": "started_at", "descending": True}),
        dcc.Store(id="calls-page", data=0), dcc.Store(id="calls-count", data=0), dcc.Store(id=calls_grid.OPEN_STORE),
        html.Div([html.Span(id="calls-summary", className="summary"),
                  html.Button("‹ " + _("Previous"), id="calls-prev", className="pager"),
                  html.Button(_("Next") + " ›", id="calls-next", className="pager"),
                  html.A(_("Download CSV"), id="calls-download", href=DOWNLOAD_PATH,
                         className="button" if can_download else "button hidden"),
                  html.A(_("CSV for Excel"), id="calls-download-excel", href=DOWNLOAD_PATH + "?dialect=excel",
                         className="button" if can_download else "button hidden")],
                 className="table-bar"),
        html.Div(id="calls-table", className="table-wrap"),
        html.Div(id="calls-detail", className="detail"),
    ])


def values_of(args: tuple[Any, ...]) -> dict[str, Any]:
    """The control values (callback arguments in ``CONTROLS`` order) as a dict."""
    return {key: value for (key, _, _), value in zip(CONTROLS, args)}


def _cell(value: Any) -> str:
    return "—" if fmt.missing(value) else str(value)


def render_table(ctx: Context, values: dict[str, Any], sort: dict[str, Any] | None,
                 page: int | None) -> tuple[Any, str, str, int, str, str]:
    """(table, summary, download href, total calls, Excel download href, the address's query) for
    the filter values, sort and page."""
    try:
        flt = view.filter_of(ctx, values)
    except controls.FilterError as exc:
        return (html.Div(str(exc), className="error-note"), _("Filter not applied"), DOWNLOAD_PATH, 0,
                DOWNLOAD_PATH, no_update)
    # The stores come back from the browser: a forged page or sort falls back to a real one.
    sort, page = controls.sort_choice(sort, SORT_COLUMNS, DEFAULT_SORT), controls.page_number(page)
    args = dict(sort=sort["column"], descending=sort["descending"], page_size=PAGE_SIZE)
    # The count and the requested page run side by side (both scan the same calls); a page past
    # the end, known only once the count is in, is asked for again.
    counting = _POOL.submit(ctx.data.get, queries.call_count, flt)
    rows = ctx.data.get(queries.call_detail, flt, page=max(0, page or 0), **args)
    total = counting.result()
    last = max(0, (total - 1) // PAGE_SIZE)
    if (page or 0) > last:
        page = last
        rows = ctx.data.get(queries.call_detail, flt, page=page, **args)
    page = max(0, min(page or 0, last))
    records = rows.to_dict("records")
    columns = [(c, _(t), lambda r, text=text: _cell(text(r, flt.zone))) for c, t, text in COLUMNS]
    table = calls_grid.grid(records, columns, sort) if records else \
        html.Div(_("No calls match these filters"), className="empty-note")
    summary = _("{n} calls · page {page} of {pages} · times in {zone}").format(
        n=fmt.count(total), page=page + 1, pages=last + 1, zone=flt.zone)
    q = json.dumps(controls.clean_values(values), sort_keys=True)
    href = DOWNLOAD_PATH + "?" + urlencode({"q": q})
    return table, summary, href, total, DOWNLOAD_PATH + "?" + urlencode({"q": q, "dialect": "excel"}), \
        urlstate.search_of(values)


def next_page(trigger: Any, page: Any, total: Any) -> int:
    """The page after a pager click (clamped), or 0 when a filter or the sort changed."""
    total = total if isinstance(total, int) and not isinstance(total, bool) and total > 0 else 0
    page, last = controls.page_number(page), max(0, (total - 1) // PAGE_SIZE)
    if trigger == "calls-prev":
        return max(0, page - 1)
    if trigger == "calls-next":
        return min(last, page + 1)
    return 0


def next_sort(column: str, sort: dict[str, Any] | None) -> dict[str, Any]:
    """A header click: the same column flips its order, another one sorts descending."""
    if column not in SORT_COLUMNS:
        raise ValueError(f"not a sortable column: {column!r}")
    if sort and sort.get("column") == column:
        return {"column": column, "descending": not sort.get("descending")}
    return {"column": column, "descending": True}


def register(app: Any, ctx: Context) -> None:
    """Wire filters, pager, sort headers, rows and option lists."""
    inputs = [Input(cid, prop) for _, cid, prop in CONTROLS]

    @app.callback(Output("calls-table", "children"), Output("calls-summary", "children"),
                  Output("calls-download", "href"), Output("calls-count", "data"),
                  Output("calls-download-excel", "href"), Output("url-sync", "search", allow_duplicate=True),
                  Input("seq", "data"), Input("calls-sort", "data"), Input("calls-page", "data"), *inputs,
                  prevent_initial_call="initial_duplicate")
    def _table(_seq: Any, sort: Any, page: Any, *args: Any) -> tuple[Any, ...]:
        return render_table(ctx, values_of(args), sort, page)

    @app.callback(Output("calls-page", "data"), Input("calls-prev", "n_clicks"), Input("calls-next", "n_clicks"),
                  Input("calls-sort", "data"), *inputs, State("calls-page", "data"), State("calls-count", "data"))
    def _page(*args: Any) -> int:
        return next_page(dash_ctx.triggered_id, args[-2], args[-1])

    @app.callback(Output("calls-sort", "data"), Input(calls_grid.GRID_ID, "sort_by"),
                  State("calls-sort", "data"), prevent_initial_call=True)
    def _sort(sort_by: Any, sort: Any) -> Any:
        current = controls.sort_choice(sort, SORT_COLUMNS, DEFAULT_SORT)
        column = calls_grid.clicked_column(sort_by, current["column"], SORT_COLUMNS)
        return no_update if column is None else next_sort(column, current)  # None: a forged click

    app.clientside_callback(calls_grid.OPEN_JS, Output(calls_grid.OPEN_STORE, "data"),
                            Input(calls_grid.GRID_ID, "active_cell"), prevent_initial_call=True)

    @app.callback(Output("calls-detail", "children"), Input(calls_grid.OPEN_STORE, "data"), prevent_initial_call=True)
    def _open(clicked: Any) -> Any:
        call_id = calls_grid.call_of(clicked)
        return no_update if call_id is None else call_view.render(ctx, call_id)  # None: a forged click

    _register_options(app, ctx)


def user_options(ctx: Context, search: Any, selected: Any) -> list[dict[str, str]]:
    """Employees whose id contains the typed text (and the ones already chosen)."""
    typed = search.strip()[:controls.MAX_NAME] if isinstance(search, str) else ""
    chosen = [v for v in selected if isinstance(v, str)] if isinstance(selected, list) else []
    found = ctx.data.get(dq.dimension_values, "user", search=typed or None, limit=50)
    return controls.options(sorted(set(found) | set(chosen[:controls.MAX_VALUES])))


def _register_options(app: Any, ctx: Context) -> None:
    app.callback(Output("calls-users", "options"), Input("calls-users", "search_value"),
                 State("calls-users", "value"))(lambda search, selected: user_options(ctx, search, selected))
    for dimension, component in (("portal", "calls-portals"), ("region", "calls-regions")):
        app.callback(Output(component, "options"), Input("seq", "data"))(
            lambda _seq, d=dimension: controls.options(ctx.data.lasting(dq.dimension_values, d, limit=1000)))

