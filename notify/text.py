"""What a portal administrator reads: the title and body of a notification.

Plain words first (the portal, what happened, the call, for an outage how
many calls bypassed the Controller and for how long), then the references a
support engineer needs: the alert id(s), the state and the idempotency key.
Every value from an alert is cut to a bounded length; nothing is markup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote

from notify.alerts import Alert

TITLES = {
    "controller_bypassed": "a call bypassed the licence Controller",
    "controller_outage": "the licence Controller is not answering",
    "stale_key": "a call used a stale direct-access key",
    "license_error": "a call was refused: licence error",
    "config_not_found": "a development copy of the portal may be taking calls",
    "extranet_call": "an extranet user called out on a paid line",
    "unrated_call": "an answered call has no tariff",
    "recording_missing": "a call recording is missing",
    "spend_spike": "unusual telephony spending",
    "low_asr": "few calls are being answered",
    "recording_storage_80": "recording storage is 80 % full",
    "recording_storage_90": "recording storage is 90 % full",
    "recording_storage_100": "recording storage is full",
}
STATE_WORDS = {"open": "", "resolved": "resolved", "retracted": "withdrawn"}
BypassCount = Callable[[str, str, str | None], int | None]  # (portal, from ts, to ts or None) -> calls


class Message(NamedTuple):
    """A notification's title and body."""

    title: str
    body: str


def alert_message(alert: Alert, key: str, *, dash_url: str | None = None,
                  bypasses: BypassCount | None = None, ack: tuple[str, str] | None = None) -> Message:
    """The message of one alert state; ``key`` is its idempotency key."""
    what = TITLES.get(alert.type, f"alert {alert.type}")
    state = STATE_WORDS[alert.state]
    title = f"Portal {alert.portal_id}: {what}" + (f" ({state})" if state else "")
    lines = [f"Portal {alert.portal_id}: {describe(alert, bypasses)}"]
    if alert.call_id:
        lines.append(f"Call: {alert.call_id}" + (f" — {call_link(dash_url, alert.call_id)}" if dash_url else ""))
    lines.append(f"When: {_when(alert.ts)}")
    if ack:
        lines.append(f"Acknowledged by {ack[0]} at {ack[1]}.")
    lines += ["", f"Alert: {alert.alert_id} (state: {alert.state})", f"Idempotency key: {key}"]
    return Message(title, "\n".join(lines))


def digest_message(portal_id: str, route_name: str, window: tuple[int, int], alerts: list[Alert],
                   key: str, *, more: bool = False, dash_url: str | None = None) -> Message:
    """One digest: every alert of a route and portal in a window (or the first ``len(alerts)``)."""
    start, end = (_clock(ms) for ms in window)
    counts = Counter((a.type, a.state) for a in alerts)
    title = f"Portal {portal_id}: {len(alerts)} alert{'s' if len(alerts) != 1 else ''} from {start} to {end}"
    lines = [f"Portal {portal_id}, {start} – {end} ({route_name}):"]
    for (kind, state), n in sorted(counts.items()):
        words = TITLES.get(kind, f"alert {kind}")
        lines.append(f"  {n} × {words}" + (f" ({STATE_WORDS[state]})" if STATE_WORDS[state] else ""))
    if more:
        lines.append("More alerts of this window follow in the next message.")
    lines += ["", "Alerts:"]
    for a in alerts:
        call = f" call {a.call_id}" if a.call_id else ""
        link = f" {call_link(dash_url, a.call_id)}" if dash_url and a.call_id else ""
        lines.append(f"  {a.alert_id} ({a.state}){call}{link}")
    lines += ["", f"Idempotency key: {key}"]
    return Message(title, "\n".join(lines))


def describe(alert: Alert, bypasses: BypassCount | None = None) -> str:
    """The alert in a portal administrator's words."""
    d = alert.detail
    if alert.state == "retracted":
        return f"withdrawn — later events show that \"{TITLES.get(alert.type, alert.type)}\" does not stand."
    describe_type = _DESCRIBE.get(alert.type)
    return describe_type(alert, d, bypasses) if describe_type else f"alert of type {alert.type}."


def _outage(alert: Alert, d: dict[str, Any], bypasses: BypassCount | None) -> str:
    opened, resolved = d.get("opened_at"), d.get("resolved_at")
    counted = bypasses(alert.portal_id, opened, resolved) if bypasses and isinstance(opened, str) else None
    calls = f"{counted} call{'s' if counted != 1 else ''}" if counted is not None else "an unknown number of calls"
    if alert.state == "resolved" and isinstance(opened, str) and isinstance(resolved, str):
        return (f"the licence Controller answers again. The outage lasted {_duration(opened, resolved)} "
                f"({_when(opened)} – {_when(resolved)}); {calls} bypassed the Controller meanwhile "
                "(direct-access mode, no licence check).")
    threshold = d.get("threshold_calls")
    window = d.get("window_s")
    rule = (f" ({threshold} bypassed calls within {_span(window)})"
            if isinstance(threshold, int) and isinstance(window, (int, float)) else "")
    since = f" since {_when(opened)}" if isinstance(opened, str) else ""
    return (f"the licence Controller is not answering{since}{rule}: calls go through in direct-access mode "
            f"without a licence check. Bypassed calls so far: {counted if counted is not None else 'unknown'}.")


_DESCRIBE: dict[str, Callable[[Alert, dict[str, Any], BypassCount | None], str]] = {
    "controller_outage": _outage,
    "controller_bypassed": lambda a, d, _: (
        "a call went through without the licence Controller's check (direct-access mode"
        + (f", reason: {d['reason']}" if isinstance(d.get("reason"), str) else "") + ")."),
    "stale_key": lambda a, d, _: (
        "a call bypassed the Controller with a direct-access key saved "
        + (f"{_span(d['key_age_s'])} before the call" if isinstance(d.get("key_age_s"), (int, float))
           else "too long ago") + "; the Controller normally saves it daily."),
    "license_error": lambda a, d, _: "the licence Controller refused a call: licence error.",
    "config_not_found": lambda a, d, _: (
        "the Controller found no configuration for the called line"
        + (f" {d['line_number']}" if isinstance(d.get("line_number"), str) else "")
        + ": a development copy of the portal is probably taking calls."),
    "extranet_call": lambda a, d, _: (
        "an extranet user" + (f" ({d['user_id']})" if isinstance(d.get("user_id"), str) else "")
        + " placed a call on a paid line" + (f" ({d['line']})" if isinstance(d.get("line"), str) else "") + "."),
    "unrated_call": lambda a, d, _: (
        "an answered call" + (f" to {d['to']}" if isinstance(d.get("to"), str) else "")
        + " matches no tariff, so it was billed at 0.00."),
    "recording_missing": lambda a, d, _: (
        "a call that should have been recorded has no recording"
        + (f" (employee {d['user_id']}, {d['talk_s']} s of talk)"
           if isinstance(d.get("user_id"), str) and isinstance(d.get("talk_s"), str) else "") + "."),
    "spend_spike": lambda a, d, _: (
        f"telephony spending in the hour from {_when(d.get('window_start'))} was {d.get('spend')} "
        f"{d.get('currency')}, over {d.get('k')} × the usual {d.get('median')} for this weekday and hour."),
    "low_asr": lambda a, d, _: (
        f"only {d.get('answered')} of {d.get('calls')} calls were answered in the hour from "
        f"{_when(d.get('window_start'))} (answer rate {_percent(d.get('asr'))}, "
        f"alert below {_percent(d.get('threshold'))})."),
}
for _level in (80, 90, 100):
    _DESCRIBE[f"recording_storage_{_level}"] = lambda a, d, _: (
        f"call recordings use {_bytes(d.get('used_bytes'))} of the {_bytes(d.get('quota_bytes'))} quota "
        f"({_percent(d.get('share'))}); recordings stop fitting when it is full.")


def call_link(dash_url: str, call_id: str) -> str:
    """The dashboard's page of one call (``/calls/<call_id>``)."""
    return dash_url.rstrip("/") + "/calls/" + quote(call_id, safe="")


def _when(ts: Any) -> str:
    if not isinstance(ts, str):
        return "—"
    moment = _parse(ts)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ts[:40]


def _parse(ts: str) -> datetime | None:
    try:
        return datetime.fromisoformat(ts.replace("z", "Z").replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _duration(start: str, end: str) -> str:
    a, b = _parse(start), _parse(end)
    return _span((b - a).total_seconds()) if a and b else "an unknown time"


def _span(seconds: Any) -> str:
    total = int(round(max(0.0, float(seconds))))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _percent(value: Any) -> str:
    try:
        return f"{float(value) * 100:.1f} %"
    except (TypeError, ValueError):
        return "—"


def _bytes(value: Any) -> str:
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


def listed_ids(messages: Iterable[Message]) -> list[str]:
    """Alert ids listed in messages' bodies (``Alert: <id>`` lines and digest lines), for tests and tools."""
    found = []
    for message in messages:
        for line in message.body.splitlines():
            if line.startswith("Alert: "):
                found.append(line[7:].split(" ", 1)[0])
            elif line.startswith("  ") and "(" in line and ":" in line.split(" (", 1)[0]:
                found.append(line.strip().split(" ", 1)[0])
    return found
