"""Building blocks shared by the pages: the shell, cards, charts, tables, the period bar.

Everything here renders data as text children of Dash components (never as
raw HTML), and links only through :func:`link`, which accepts http(s) only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dash import dcc, html

from dashboards import controls
from dashboards import formatting as fmt
from dashboards.access import current_user
from dashboards.i18n import _, current_locale
from dashboards.safe import playable, safe_url

GRAPH_CONFIG = {"displaylogo": False}


def visible(pages: Sequence[Any]) -> list[Any]:
    """The pages the current user may open (the audit log: operators only)."""
    user = current_user()
    return [p for p in pages if not getattr(p, "OPERATORS_ONLY", False) or user.can_audit]


def nav(pages: Sequence[Any]) -> html.Nav:
    """The top bar: product name, one link per page, the language and the account."""
    links = [dcc.Link(_(page.TITLE), href=page.PATH, className="nav-link", id=f"nav-{page.NAME}")
             for page in visible(pages)]
    user = current_user()
    other = "ru" if current_locale() == "en" else "en"
    tail = [html.A("Русский" if other == "ru" else "English", href=f"/lang/{other}?next=/", id="nav-lang",
                   className="nav-link lang")]
    if user.name != "local":
        tail += [html.Span(user.name, className="nav-user", id="nav-user"),
                 html.A(_("Log out"), href="/logout", className="nav-link", id="nav-logout")]
    return html.Nav([html.Span("callstream", className="brand"), *links, html.Span(className="spacer"), *tail],
                    className="nav")


def shell(pages: Sequence[Any], refresh_s: float, seq: int | None = None,
          badge: tuple[str, str] | None = None,
          warning: str = "") -> html.Div:
    """The app layout: location, live tick, data stamp, freshness badge, nav and the page slot.

    ``seq`` and ``badge`` are the data stamp and the freshness text at page load, so the
    page needs no extra round trip for them and the first tick redraws nothing; ``warning``
    is the missing-data banner under the badge (hidden when empty).
    """
    badge = badge or (_("Connecting to the warehouse…"), "freshness empty")
    return html.Div([
        dcc.Location(id="url"),
        dcc.Location(id="url-sync", refresh=False),  # filters written to the address (bookmarks)
        dcc.Location(id="go", refresh=True),  # drill-down: a click on a chart opens the calls
        dcc.Interval(id="tick", interval=int(refresh_s * 1000)),
        dcc.Store(id="seq", data=seq),  # the stamp the page renders from
        dcc.Store(id="seq-next", data=seq),  # the newest stamp (dashboards/live.py)
        nav(pages),
        html.Div(id="freshness", className=badge[1], children=badge[0]),
        html.Div(id="integrity", className=warning_class(warning), children=warning),
        html.Main(id="page", className="page"),
    ])


def warning_class(warning: str) -> str:
    """CSS class of the missing-data banner: hidden when there is nothing to say."""
    return "integrity-warning" if warning else "integrity-warning hidden"


def period_bar(prefix: str, *, portals: bool = True, period: str | None = None,
               chosen: Sequence[str] | None = None) -> html.Div:
    """Period radio buttons (and a portal picker) of the analytics pages."""
    items = [dcc.RadioItems(id=f"{prefix}-period", value=period or controls.DEFAULT_PERIOD, inline=True,
                            options=[{"label": _(v), "value": k} for k, v in controls.PERIODS.items()],
                            className="period")]
    if portals:
        items.append(dcc.Dropdown(id=f"{prefix}-portals", multi=True, placeholder=_("All portals"),
                                  value=list(chosen or []), className="portal-picker"))
    return html.Div(items, className="filter-bar")


def kpi_card(card_id: str, title: str, href: str) -> dcc.Link:
    """A headline figure with its sparkline; the whole card links to the page behind it."""
    return dcc.Link(html.Div([
        html.Div(title, className="kpi-title"),
        html.Div("…", id=f"kpi-{card_id}-value", className="kpi-value"),
        html.Div("", id=f"kpi-{card_id}-note", className="kpi-note"),
        html.Img(id=f"kpi-{card_id}-spark", className="spark", alt=f"{title}, per day"),
    ], className="kpi"), href=href, className="kpi-link", id=f"kpi-{card_id}")


def chart(graph_id: str, wide: bool = False) -> html.Div:
    """A card holding one graph."""
    return html.Div(dcc.Graph(id=graph_id, config=GRAPH_CONFIG), className="card wide" if wide else "card")


def text_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], table_id: str | None = None,
               empty: str | None = None) -> html.Table | html.Div:
    """A plain table of text cells (components in a row are kept as they are)."""
    body = [html.Tr([cell if _is_component(cell) else html.Td(_text(cell)) for cell in row]) for row in rows]
    if not body:
        return html.Div(empty or _("Nothing here in this period"), className="empty-note")
    kwargs = {"id": table_id} if table_id else {}
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in headers])), html.Tbody(body)],
                      className="table", **kwargs)


def _is_component(value: Any) -> bool:
    return isinstance(value, html.Td)


def _text(value: Any) -> str:
    return "—" if fmt.missing(value) else str(value)


def link(url: Any, text: str | None = None) -> html.A | html.Span:
    """A link that opens in a new tab, only for a safe http(s) URL; anything else as plain text."""
    safe = safe_url(url)
    if safe is None:
        return html.Span(_text(url) if url else "—", className="unsafe-url", title="not an http(s) link")
    return html.A(text or safe, href=safe, target="_blank", rel="noopener noreferrer nofollow")


def recording(url: Any) -> html.Div:
    """A recording: its link, plus an audio player when the browser can play the file."""
    safe = safe_url(url)
    items: list[Any] = [link(url)]
    if safe is not None and playable(safe):
        items.append(html.Audio(src=safe, controls=True, preload="none", className="player"))
    return html.Div(items, className="recording")
