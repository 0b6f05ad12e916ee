"""The Dash app: a shell with live freshness, one page per path, all reading one warehouse.

``create_app(settings, reader)`` builds it (tests build it against a small
warehouse); ``serve(settings)`` runs it with waitress, a production WSGI
server, after checking that a non-loopback bind has credentials.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dash import Dash, Input, Output, State, html, no_update

from common.config import Settings
from dashboards import auth, download, guard, layout, live
from dashboards import formatting as fmt
from dashboards.access import current_user
from dashboards.data import Context, Data, SteadyReader
from dashboards.i18n import _
from dashboards.pages import PAGES, call_view
from dashboards.urlstate import query_values
from warehouse import queries
from warehouse.reader import Reader

ASSETS = Path(__file__).resolve().parent / "assets"
HEALTH_PATH = "/healthz"


def route(pathname: str | None, ctx: Context, search: str | None = None) -> Any:
    """The layout of the page at ``pathname`` with the filters of ``search`` (a not-found note for
    anything else, and for a page the user may not open)."""
    path = pathname or "/"
    if path.startswith(call_view.CALL_PREFIX) and len(path) > len(call_view.CALL_PREFIX):
        return call_view.page(ctx, path)
    for page in layout.visible(PAGES):
        if path == page.PATH:
            return page.layout(ctx, query_values(search))
    return html.Div([html.H1(_("Not found")), html.P(_("No page at {path}").format(path=path))], id="not-found")


def status_state(ctx: Context, last_seq: Any) -> tuple[str, str, Any, str, str]:
    """(badge text, badge class, new data stamp or no_update, missing-data warning, its class)."""
    info = queries.freshness(ctx.data.reader, ctx.now())  # never cached: its ages are of this moment
    if current_user().scope is not None:
        info.pop("newest", None)  # the newest call of any portal is not a portal administrator's business
    text, level = fmt.freshness(info, ctx.stale_after_s)
    seq = info.get("seq")
    warning = fmt.missing_data(info.get("incomplete"))
    return (text, f"freshness {level}", (seq if seq != last_seq else no_update), warning,
            layout.warning_class(warning))


def freshness_state(ctx: Context, last_seq: Any) -> tuple[str, str, Any]:
    """(badge text, badge class, new data stamp or no_update when nothing was published)."""
    return status_state(ctx, last_seq)[:3]


def _shell(ctx: Context) -> Any:
    """The layout of one page load, with the freshness (and any missing-data warning) of this moment."""
    text, css, _, warning, _ = status_state(ctx, None)
    return layout.shell(PAGES, ctx.settings.refresh_s, ctx.data.seq(), (text, css), warning)


def create_app(settings: Settings, reader: Reader, *, context: Context | None = None) -> Dash:
    """The dashboard over ``reader`` with auth and the CSV route installed on its Flask server."""
    ctx = context or Context(settings, Data(reader))
    app = Dash(__name__, title="callstream", update_title=None, assets_folder=str(ASSETS),
               suppress_callback_exceptions=True, serve_locally=True, compress=False)
    app.layout = lambda: _shell(ctx)
    app.validation_layout = html.Div([layout.shell(PAGES, settings.refresh_s),
                                      *[p.layout(ctx, {}) for p in PAGES]])

    @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
    def _route(pathname: str | None, search: str | None) -> Any:
        return route(pathname, ctx, search)

    # The newest stamp goes to "seq-next"; live.py moves it to the pages' "seq" between renders.
    # The tick pauses while the badge is computed: a tick during it would drop its answer.
    @app.callback(Output("freshness", "children"), Output("freshness", "className"), Output("seq-next", "data"),
                  Output("integrity", "children"), Output("integrity", "className"),
                  Input("tick", "n_intervals"), State("seq-next", "data"), prevent_initial_call=True,
                  running=[(Output("tick", "disabled"), True, False)])
    def _freshness(_n: Any, last_seq: Any) -> tuple[str, str, Any, str, str]:
        return status_state(ctx, last_seq)

    live.install(app)

    for page in PAGES:
        page.register(app, ctx)
    auth.install(app.server, settings, ctx.accounts)
    guard.install(app.server, app.callback_map)
    download.install(app.server, ctx)
    call_view.install(app.server, ctx)
    app.server.add_url_rule(HEALTH_PATH, "healthz", lambda: ("ok\n", 200, {"Content-Type": "text/plain"}))
    return app


def open_reader(settings: Settings) -> SteadyReader:
    """The dashboard's warehouse reader: DuckDB within ``CALLSTREAM_DASH_MEMORY_MB`` and ``_THREADS``.

    Beyond the memory limit a query spills to a temporary directory of this process
    rather than failing (or growing the process).
    """
    import tempfile

    spill = Path(tempfile.gettempdir()) / f"callstream-dashboard-{os.getpid()}"
    return SteadyReader(settings.warehouse, memory_limit=f"{settings.dash_memory_mb}MiB",
                        threads=settings.dash_threads, temp_directory=str(spill))


def serve(settings: Settings, *, threads: int = 8) -> None:
    """Run the dashboard until interrupted (waitress; SIGINT/SIGTERM stop it)."""
    import waitress

    auth.check_bind(settings)
    app = create_app(settings, open_reader(settings))
    waitress.serve(app.server, host=settings.dash_host, port=settings.dash_port, threads=threads,
                   ident="callstream", _quiet=True)
