"""Call detail: filters, a server-side paged and sorted table, the CSV download, one call opened."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from dash import ALL, Input, Output, State, ctx as dash_ctx, dcc, html, no_update

from dashboards import controls, formatting as fmt, layout as ui
from dashboards.data import Context
from dashboards.pages import call_view
from warehouse import dashboard_queries as dq, queries
from warehouse.filters import SORT_COLUMNS

NAME, PATH, TITLE = "calls", "/calls", "Call detail"
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="call-count")
PAGE_SIZE = 50
DEFAULT_SORT = {"column": "started_at", "descending": True}
MAX_CALL_ID = 256  # longer ids are not calls of the contract: nothing to open
DOWNLOAD_PATH = "/download/calls.csv"
# (values key, component id, property) of every filter control, in callback order.
CONTROLS = (("start", "calls-dates", "start_date"), ("end", "calls-dates", "end_date"),
            ("portals", "calls-portals", "value"), ("users", "calls-users", "value"),
            ("lines", "calls-lines", "value"), ("directions", "calls-directions", "value"),
            ("statuses", "calls-statuses", "value"), ("regions", "calls-regions", "value"),
            ("controllers", "calls-controllers", "value"), ("recording", "calls-recording", "value"),
            ("min_talk_s", "calls-min-talk", "value"), ("max_talk_s", "calls-max-talk", "value"),
            ("min_cost", "calls-min-cost", "value"), ("max_cost", "calls-max-cost", "value"),
            ("number", "calls-number", "value"))
# (column, header, text of a row) of the table.
COLUMNS = (("started_at", "Started (UTC)", lambda r: fmt.timestamp(r["started_at"])[:19]),
           ("portal_id", "Portal", lambda r: r["portal_id"]), ("direction", "Direction", lambda r: r["direction"]),
           ("line", "Line", lambda r: r["line"]), ("from", "From", lambda r: r["from"]),
           ("to", "To", lambda r: r["to"]), ("user_id", "Employee", lambda r: r["user_id"]),
           ("region", "Region", lambda r: r["region"]), ("status", "Status", lambda r: r["status"]),
           ("talk_s", "Talk", lambda r: fmt.seconds(r["talk_s"])),
           ("cost", "Cost", lambda r: fmt.money(r["cost"], r["currency"])),
           ("controller", "Controller", lambda r: r["controller"]),
           ("recording_bytes", "Recording", lambda r: fmt.size(r["recording_bytes"]) if r["recording_bytes"] else ""))


def _multi(component_id: str, placeholder: str, values: tuple[str, ...] | None = None) -> dcc.Dropdown:
    return dcc.Dropdown(id=component_id, multi=True, placeholder=placeholder, persistence=True,
                        options=controls.options(values) if values else [])


def _number(component_id: str, placeholder: str) -> dcc.Input:
    return dcc.Input(id=component_id, type="number", min=0, placeholder=placeholder, debounce=True,
                     className="num", persistence=True)


def filters_panel(ctx: Context) -> html.Div:
    """Every filter of the call table."""
    today = ctx.now().date()
    return html.Div([
        dcc.DatePickerRange(id="calls-dates", start_date=(today - timedelta(days=29)).isoformat(),
                            end_date=today.isoformat(), display_format="YYYY-MM-DD"),
        _multi("calls-portals", "Portal"), _multi("calls-users", "Employee"),
        _multi("calls-lines", "Line", controls.LINES), _multi("calls-directions", "Direction", controls.DIRECTIONS),
        _multi("calls-statuses", "Status", controls.STATUSES), _multi("calls-regions", "Region"),
        _multi("calls-controllers", "Controller verdict", controls.CONTROLLER),
        dcc.RadioItems(id="calls-recording", value="", inline=True, className="recording-filter",
                       options=[{"label": "any", "value": ""}, {"label": "recorded", "value": "yes"},
                                {"label": "not recorded", "value": "no"}]),
        _number("calls-min-talk", "talk ≥ s"), _number("calls-max-talk", "talk ≤ s"),
        _number("calls-min-cost", "cost ≥"), _number("calls-max-cost", "cost ≤"),
        dcc.Input(id="calls-number", type="search", placeholder="Number contains…", debounce=True,
                  className="search", maxLength=64),
    ], className="filters")


def layout(ctx: Context) -> html.Div:
    """Filters, table with pager and download, and the opened call."""
    return html.Div([
        html.H1(TITLE), filters_panel(ctx),
        dcc.Store(id="calls-sort", data={"column": "started_at", "descending": True}),
        dcc.Store(id="calls-page", data=0), dcc.Store(id="calls-count", data=0),
        html.Div([html.Span(id="calls-summary", className="summary"),
                  html.Button("‹ Previous", id="calls-prev", className="pager"),
                  html.Button("Next ›", id="calls-next", className="pager"),
                  html.A("Download CSV", id="calls-download", href=DOWNLOAD_PATH, className="button")],
                 className="table-bar"),
        html.Div(id="calls-table", className="table-wrap"),
        html.Div(id="calls-detail", className="detail"),
    ])


def values_of(args: tuple[Any, ...]) -> dict[str, Any]:
    """The control values (callback arguments in ``CONTROLS`` order) as a dict."""
    return {key: value for (key, _, _), value in zip(CONTROLS, args)}


def _header(column: str, title: str, sort: dict[str, Any]) -> html.Th:
    if column not in SORT_COLUMNS:
        return html.Th(title)
    arrow = (" ▼" if sort.get("descending") else " ▲") if sort.get("column") == column else ""
    return html.Th(html.Button(title + arrow, id={"type": "calls-sort-by", "column": column}, className="sort"))


def _cell(value: Any) -> str:
    return "—" if fmt.missing(value) else str(value)


def render_table(ctx: Context, values: dict[str, Any], sort: dict[str, Any] | None,
                 page: int | None) -> tuple[Any, str, str, int]:
    """(table, summary, download href, total calls) for the filter values, sort and page."""
    try:
        flt = controls.call_filter(values, ctx.now().date())
    except controls.FilterError as exc:
        return html.Div(str(exc), className="error-note"), "Filter not applied", DOWNLOAD_PATH, 0
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
    body = [html.Tr([html.Td(_cell(text(r))) for _, _, text in COLUMNS],
                    id={"type": "call-row", "call": r["call_id"]}, className="row", n_clicks=0)
            for r in records]
    table = html.Table([html.Thead(html.Tr([_header(c, t, sort) for c, t, _ in COLUMNS])), html.Tbody(body)],
                       className="table calls", id="calls-grid") if body else \
        html.Div("No calls match these filters", className="empty-note")
    summary = f"{fmt.count(total)} calls · page {page + 1} of {last + 1}"
    href = DOWNLOAD_PATH + "?" + urlencode({"q": json.dumps(controls.clean_values(values), sort_keys=True)})
    return table, summary, href, total


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
                  Input("seq", "data"), Input("calls-sort", "data"), Input("calls-page", "data"), *inputs)
    def _table(_seq: Any, sort: Any, page: Any, *args: Any) -> tuple[Any, ...]:
        return render_table(ctx, values_of(args), sort, page)

    @app.callback(Output("calls-page", "data"), Input("calls-prev", "n_clicks"), Input("calls-next", "n_clicks"),
                  Input("calls-sort", "data"), *inputs, State("calls-page", "data"), State("calls-count", "data"))
    def _page(*args: Any) -> int:
        return next_page(dash_ctx.triggered_id, args[-2], args[-1])

    @app.callback(Output("calls-sort", "data"), Input({"type": "calls-sort-by", "column": ALL}, "n_clicks"),
                  State("calls-sort", "data"), prevent_initial_call=True)
    def _sort(clicks: Any, sort: Any) -> Any:
        column = dash_ctx.triggered_id.get("column") if isinstance(dash_ctx.triggered_id, dict) else None
        if not _clicked(clicks) or not isinstance(column, str) or column not in SORT_COLUMNS:
            return no_update  # no click, or a forged header
        return next_sort(column, controls.sort_choice(sort, SORT_COLUMNS, DEFAULT_SORT))

    @app.callback(Output("calls-detail", "children"), Input({"type": "call-row", "call": ALL}, "n_clicks"),
                  prevent_initial_call=True)
    def _open(clicks: Any) -> Any:
        call_id = dash_ctx.triggered_id.get("call") if isinstance(dash_ctx.triggered_id, dict) else None
        if not _clicked(clicks) or not isinstance(call_id, str) or len(call_id) > MAX_CALL_ID:
            return no_update  # no click, or a forged row
        return call_view.render(ctx, call_id)

    _register_options(app, ctx)


def _clicked(clicks: Any) -> bool:
    """True when a pattern-matched input list holds a click (a forged one may hold anything)."""
    return isinstance(clicks, list) and any(isinstance(c, int) and c > 0 for c in clicks)


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

