"""One call (from the table, an alert, or its own URL ``/calls/<call_id>``): its full CDR, its
event timeline and its recordings.

Recordings are opened through ``/recording/<call_id>/<n>``, which checks the
``listen_recordings`` right and the user's portals, writes an audit entry and
only then redirects to the recording's (checked http/https) URL.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from dash import dcc, html

from dashboards import formatting as fmt
from dashboards import labels
from dashboards import layout as ui
from dashboards.access import current_user
from dashboards.data import Context
from dashboards.i18n import _
from dashboards.safe import playable, safe_url
from warehouse import queries

CALL_PREFIX = "/calls/"
RECORDING_PREFIX = "/recording/"
MAX_CALL_ID = 256

# Storage bookkeeping, not part of the CDR a user reads.
HIDDEN = {"kafka_partition", "kafka_offset", "rate_per_min_text", "cost_text", "started_day", "recording_urls"}


def cdr_text(value: Any, zone: str | None = None, name: str = "") -> str:
    """One CDR value: times in ``zone`` (UTC if none), money and seconds exact, enumerated values
    (status, line, cause, ...) in the reader's words."""
    if fmt.missing(value):
        return "—"
    if isinstance(value, datetime):
        return fmt.timestamp(value, zone)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, Decimal):
        return str(value)
    return labels.value(name, value)


def cdr_rows(cdr: dict[str, Any], zone: str | None = None) -> list[tuple[str, str]]:
    """(field in words, text) of every CDR field a reader cares about, in warehouse order."""
    texts = {name: cdr_text(value, zone, name) for name, value in cdr.items() if name not in HIDDEN}
    if cdr.get("cost_text") is not None:  # the CDR's own string, exactly as billed
        texts["cost"] = cdr["cost_text"]
    if cdr.get("rate_per_min_text") is not None:
        texts["rate_per_min"] = cdr["rate_per_min_text"]
    return [(labels.field(name), text) for name, text in texts.items()]


def timeline_rows(events: Any, zone: str | None = None) -> list[tuple[str, str, str, str, str]]:
    """(time, event in words, source in words, node, data as JSON text) of each distinct event, by time."""
    return [(fmt.timestamp(e["ts"], zone), labels.event(e["type"]), labels.source(e["source"]), e["node"],
             e["data"] or "{}") for e in events.to_dict("records")]


def recording_links(call_id: str, urls: list[Any]) -> list[Any]:
    """One link (and a player when the browser can play it) per recording, through the audited route."""
    items = []
    for n, url in enumerate(urls):
        safe = safe_url(url)
        if safe is None:
            items.append(ui.link(url))
            continue
        local = f"{RECORDING_PREFIX}{quote(call_id, safe='')}/{n}"
        parts: list[Any] = [html.A(_("Recording {n}").format(n=n + 1), href=local, target="_blank",
                                   rel="noopener noreferrer", className="recording-link")]
        if playable(safe):
            parts.append(html.Audio(src=local, controls=True, preload="none", className="player"))
        items.append(html.Div(parts, className="recording"))
    return items


def render(ctx: Context, call_id: str) -> html.Div:
    """The opened call, or a note when it is not (or no longer) in the warehouse, or not the user's."""
    cdr = ctx.data.get(queries.cdr_by_id, call_id) if len(call_id) <= MAX_CALL_ID else None
    if cdr is None:
        return html.Div(_("Call {call_id} is not in the warehouse").format(call_id=call_id),
                        className="empty-note", id="call-missing")
    events = ctx.data.get(queries.call_timeline, call_id)
    zone = ctx.portals.get(cdr["portal_id"]).tz if isinstance(cdr.get("portal_id"), str) else None
    urls = list(cdr.get("recording_urls") or [])
    if not urls:
        recordings: Any = _("No recording")
    elif current_user().can_listen:
        recordings = recording_links(call_id, urls)
    else:
        recordings = _("Your account may not listen to recordings.")
    return html.Div([
        html.H2(_("Call {call_id}").format(call_id=call_id), id="call-title"),
        dcc.Link(_("Open this call on its own page"), href=CALL_PREFIX + quote(call_id, safe=""),
                 id="call-permalink"),
        html.Div([
            html.Div([html.H3(_("CDR")), ui.text_table((_("field"), _("value")), cdr_rows(cdr, zone), "call-cdr")],
                     className="card"),
            html.Div([html.H3(_("Event timeline")),
                      ui.text_table((_("time"), _("type"), _("source"), _("node"), _("data")),
                                    timeline_rows(events, zone), "call-timeline",
                                    empty=_("No events of this call in the warehouse")),
                      html.H3(_("Recordings")),
                      html.Div(recordings, id="call-recordings")],
                     className="card"),
        ], className="grid2"),
    ], id="call-view")


def page(ctx: Context, pathname: str) -> html.Div:
    """The page ``/calls/<call_id>``."""
    from urllib.parse import unquote

    call_id = unquote(pathname[len(CALL_PREFIX):])
    return html.Div([dcc.Link("‹ " + _("Call detail"), href="/calls", className="back"), render(ctx, call_id)])


def install(server: Any, ctx: Context) -> None:
    """``/recording/<call_id>/<n>``: check the right and the portal, audit, redirect to the recording."""
    from flask import redirect

    def open_recording(call_id: str, n: int) -> Any:
        user = current_user()
        if not user.can_listen:
            return _("Your account may not listen to recordings.") + "\n", 403, {"Content-Type": "text/plain"}
        cdr = ctx.data.get(queries.cdr_by_id, call_id) if len(call_id) <= MAX_CALL_ID else None
        urls = list((cdr or {}).get("recording_urls") or [])
        url = safe_url(urls[n]) if 0 <= n < len(urls) else None
        if url is None:
            return _("No such recording") + "\n", 404, {"Content-Type": "text/plain"}
        ctx.accounts.audit(user.name, "recording_open", {"call_id": call_id, "portal_id": cdr.get("portal_id"),
                                                         "recording": n})
        response = redirect(url)
        response.headers["Cache-Control"] = "no-store"
        return response

    server.add_url_rule(RECORDING_PREFIX + "<path:call_id>/<int:n>", "open_recording", open_recording)
