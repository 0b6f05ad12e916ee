"""Audit log (operators only): who downloaded which CSV and opened which recording, when."""

from __future__ import annotations

import json
from typing import Any

from dash import Input, Output, html

from dashboards import layout as ui
from dashboards.access import current_user
from dashboards.data import Context
from dashboards.i18n import N_, _

NAME, PATH, TITLE = "audit", "/audit", N_("Audit log")
OPERATORS_ONLY = True
ACTIONS = {"csv_download": N_("CSV download"), "recording_open": N_("recording opened")}


def layout(ctx: Context, query: dict | None = None) -> html.Div:
    """The newest entries (refreshed with the data stamp)."""
    return html.Div([html.H1(_(TITLE)), html.Div(id="audit-log", className="card wide")])


def rows(entries: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """(time, user, action, what) of each entry, newest first."""
    return [(e["ts"], e["user"], _(ACTIONS.get(e["action"], e["action"])),
             json.dumps(e["detail"], ensure_ascii=False, sort_keys=True)) for e in entries]


def render(ctx: Context) -> Any:
    """The audit table, or a refusal for anyone but an operator."""
    if not current_user().can_audit:
        return html.Div(_("Only operators see the audit log."), className="error-note", id="audit-denied")
    return ui.text_table((_("time (UTC)"), _("user"), _("action"), _("what")), rows(ctx.accounts.audit_log()),
                         "audit-table", empty=_("No downloads or recordings opened yet"))


def register(app: Any, ctx: Context) -> None:
    """Fill the table on load and with each new data stamp."""
    app.callback(Output("audit-log", "children"), Input("seq", "data"))(lambda _seq: render(ctx))
