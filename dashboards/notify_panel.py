"""The Alerts page's notification panel: acknowledge an alert, silence a portal and/or type for 1 h,
24 h or a custom time with a reason, lift a silence; notify's status, active silences,
acknowledgements and failed deliveries. Every action is an event on the actions topic (who, when).

Who may do what follows the account (``dashboards.access``): operators everything; a portal
administrator acknowledges alerts of their portals and silences or lifts silences of their portals
only; a viewer nothing. Values a callback receives are checked against the user's scope, never
trusted (a forged request gets a refusal, not an action).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboards import layout as ui
from dashboards.access import LOCAL, current_user
from dashboards.data import Context
from dashboards.i18n import N_, _
from dashboards.notify_board import board_of
from notify.actions import ActionError, ack_event, parse_duration, silence_event, unsilence_event
from notify.text import TITLES
from warehouse import queries

DURATIONS = {"1h": N_("1 hour"), "24h": N_("24 hours"), "custom": N_("custom")}
OPEN_CHOICES = 200


def section() -> html.Div:
    """The panel's layout (ids start with ``nt-``)."""
    return html.Div([
        html.H3(_("Notifications")),
        html.Div(id="nt-status", className="empty-note"),
        dcc.Input(id="nt-who", placeholder=_("Your name (recorded with what you do here)"), maxLength=100,
                  className="nt-who"),
        html.Div(id="nt-result", className="nt-result"),
        html.H4(_("Open alerts")), html.Div(id="nt-open"),
        html.H4(_("Silence notifications")),
        html.Div([dcc.Input(id="nt-sil-portal", placeholder=_("Portal (empty: every portal)"), list="nt-portals",
                            maxLength=64),
                  html.Datalist(id="nt-portals"),
                  dcc.Input(id="nt-sil-type", placeholder=_("Alert type (empty: every type)"), list="nt-types",
                            maxLength=64),
                  html.Datalist(id="nt-types", children=[html.Option(value=kind, label=label)
                                                         for kind, label in sorted(TITLES.items())]),
                  dcc.RadioItems(id="nt-sil-for", value="1h", inline=True,
                                 options=[{"label": _(v), "value": k} for k, v in DURATIONS.items()]),
                  dcc.Input(id="nt-sil-custom", placeholder=_("Custom: 90m, 3d, 1h30m"), maxLength=20),
                  dcc.Input(id="nt-sil-reason", placeholder=_("Reason (required)"), maxLength=500),
                  html.Button(_("Silence"), id="nt-silence", n_clicks=0)], className="nt-form filter-bar"),
        html.H4(_("Active silences")), html.Div(id="nt-silences"),
        html.H4(_("Acknowledged alerts")), html.Div(id="nt-acks"),
        html.H4(_("Failed deliveries")), html.Div(id="nt-failures"),
    ], className="card wide", id="nt-panel")


def who(typed: Any) -> str:
    """The acting person: the logged-in account, or (the local single-user demo) the typed name."""
    user = current_user()
    if user is not LOCAL:
        return user.name[:100]
    text = typed.strip()[:100] if isinstance(typed, str) else ""
    return text or "dashboard"


def refusal(ctx: Context, action: str, target: Any, portal: Any) -> str | None:
    """Why the current user may not do this, or None."""
    user = current_user()
    if user.role == "viewer":
        return _("a viewer account cannot acknowledge or silence")
    scope = user.scope
    if scope is None:
        return None
    if action == "ack":
        open_alerts = ctx.data.get(queries.alerts, state="open", page_size=OPEN_CHOICES)  # scoped by Data
        return None if _text(target) in set(open_alerts["alert_id"]) else _("not an open alert of your portals")
    if action == "silence":
        return None if _text(portal) in scope else _("give one of your portals")
    silence = board_of(ctx).actions.silences.get(_text(target))
    return None if silence is not None and silence.portal_id in scope else _("not a silence of your portals")


def act(ctx: Context, action: str, target: Any, portal: Any, kind: Any, duration: Any, custom: Any,
        reason: Any, typed_who: Any) -> str:
    """Publish one action (``target``: the alert or silence of the clicked row); a sentence saying
    what happened, or why not."""
    refused = refusal(ctx, action, target, portal)
    if refused:
        return _("Not done: {reason}.").format(reason=refused)
    try:
        by = who(typed_who)
        if action == "ack":
            key, value = ack_event(_text(target), by)
            done = _("Acknowledged {alert} as {who}.").format(alert=_text(target), who=by)
        elif action == "silence":
            span = parse_duration(_text(custom) if duration == "custom" else (_text(duration) or "1h"))
            key, value = silence_event(_text(portal) or None, _text(kind) or None, span, _text(reason), by)
            done = _("Silenced {portal} / {kind} as {who}.").format(portal=_text(portal) or _("every portal"),
                                                                   kind=_text(kind) or _("every type"), who=by)
        elif action == "lift":
            key, value = unsilence_event(_text(target), by)
            done = _("Lifted {silence} as {who}.").format(silence=_text(target), who=by)
        else:
            return ""
    except ActionError as exc:
        return _("Not done: {reason}.").format(reason=exc)
    try:
        board_of(ctx).publish(key, value)
    except Exception as exc:  # noqa: BLE001 - Kafka away: say so, the page keeps working
        return _("Not done: the actions topic cannot be reached ({error}).").format(error=type(exc).__name__)
    return done


def _text(value: Any) -> str:
    return value.strip()[:500] if isinstance(value, str) else ""


def _button(text: str, kind: str, target: str) -> html.Td:
    return html.Td(html.Button(text, id={"type": kind, "target": target}, n_clicks=0, className="nt-row-button"))


def panel(ctx: Context) -> tuple[Any, ...]:
    """(status line, open alerts, silences, acknowledgements, failures, portal choices)."""
    board = board_of(ctx)
    scope = current_user().scope
    now_ms = int(ctx.now().timestamp() * 1000)
    silences = [s for s in board.actions.active(now_ms) if scope is None or s.portal_id in scope]
    open_alerts = ctx.data.get(queries.alerts, state="open", page_size=OPEN_CHOICES)  # scoped by Data
    mine = set(open_alerts["alert_id"])
    acks = [(a, v) for a, v in list(board.actions.acks.items())[-200:][::-1] if scope is None or a in mine][:20]
    status = board.status or {}
    # Deliveries name channels and other portals' alerts: operators only.
    failures = list(status.get("failures", []))[-20:][::-1] if scope is None else []
    unacked = [r for r in open_alerts.to_dict("records") if r["alert_id"] not in board.actions.acks][:20]
    return (status_line(board, now_ms),
            ui.text_table((_("time"), _("type"), _("portal"), _("alert"), ""),
                          [(_stamp(r["ts"]), r["type"], r["portal_id"], r["alert_id"],
                            _button(_("Acknowledge"), "nt-ack-row", r["alert_id"])) for r in unacked],
                          "nt-open-table", empty=_("No open alert waits for an acknowledgement")),
            ui.text_table((_("silence"), _("portal"), _("type"), _("until"), _("reason"), _("who"), _("at"), ""),
                          [(s.silence_id, s.portal_id or _("every portal"), s.type or _("every type"), _clock(s.end_ms),
                            s.reason, s.by, s.at, _button(_("Lift"), "nt-lift-row", s.silence_id)) for s in silences],
                          "nt-silences-table", empty=_("No silence in force")),
            ui.text_table((_("alert"), _("who"), _("at")), [(a, by, at) for a, (by, at) in acks], "nt-acks-table",
                          empty=_("No acknowledgement yet")),
            ui.text_table((_("time"), _("channel"), _("alerts"), _("attempts"), _("error")),
                          [(_clock(f.get("t")), f.get("ch"), ", ".join(f"{a[0]} ({a[1]})" for a in f.get("a", [])[:5]),
                            f.get("n"), f.get("e")) for f in failures], "nt-failures-table",
                          empty=_("No failed delivery")),
            [html.Option(value=o["value"]) for o in _portals(ctx)])


def _stamp(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, datetime) else str(value)[:40]


def status_line(board: Any, now_ms: int) -> str:
    """notify's state in one sentence."""
    if board.error:
        return _("Notifications: Kafka cannot be reached ({error}).").format(error=board.error)
    status = board.status
    if not status:
        return _("Notifications: callstream notify has not published a status yet.")
    totals = status.get("totals", {})
    age = max(0, (now_ms - int(status.get("at_ms", 0))) // 1000)
    failing = [c["channel"] for c in status.get("channels", []) if c.get("failing")]
    parts = [f"{n} {o.replace('_', ' ')}" for o, n in sorted(totals.items())] or [_("nothing yet")]
    line = _("Notifications: {counts}; status of {age} s ago").format(counts=", ".join(parts), age=age)
    failing_now = _("; failing now: {channels}").format(channels=", ".join(failing)) if failing else ""
    return line + failing_now + "."


def _clock(ms: Any) -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return "—"


def register(app: Any, ctx: Context) -> None:
    """Wire the forms, the row buttons and the live tables."""
    app.callback(Output("nt-status", "children"), Output("nt-open", "children"), Output("nt-silences", "children"),
                 Output("nt-acks", "children"), Output("nt-failures", "children"), Output("nt-portals", "children"),
                 Input("tick", "n_intervals"), Input("nt-result", "children"))(lambda _n, _r: panel(ctx))

    @app.callback(Output("nt-result", "children"), Input("nt-silence", "n_clicks"),
                  Input({"type": "nt-ack-row", "target": ALL}, "n_clicks"),
                  Input({"type": "nt-lift-row", "target": ALL}, "n_clicks"),
                  State("nt-sil-portal", "value"), State("nt-sil-type", "value"), State("nt-sil-for", "value"),
                  State("nt-sil-custom", "value"), State("nt-sil-reason", "value"), State("nt-who", "value"),
                  prevent_initial_call=True)
    def _act(_silence: Any, _acks: Any, _lifts: Any, *values: Any) -> Any:
        from dash import ctx as dash_ctx

        trigger, clicked = dash_ctx.triggered_id, dash_ctx.triggered[0].get("value") if dash_ctx.triggered else None
        if not isinstance(clicked, int) or isinstance(clicked, bool) or clicked < 1:
            return no_update  # a table re-rendered its buttons: nothing was clicked
        if trigger == "nt-silence":
            return act(ctx, "silence", None, *values)
        if isinstance(trigger, dict) and trigger.get("type") in ("nt-ack-row", "nt-lift-row"):
            action = "ack" if trigger["type"] == "nt-ack-row" else "lift"
            return act(ctx, action, trigger.get("target"), *values)
        return no_update


def _portals(ctx: Context) -> list[dict[str, str]]:
    from dashboards.pages.common import portal_options

    return portal_options(ctx)
