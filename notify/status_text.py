"""``callstream notify status`` in words, from the published summary or from the ledger itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from common.config import Settings


def ledger_summary(settings: Settings) -> dict[str, Any]:
    """A summary counted from the deliveries topic (no live queues: notify may be down)."""
    from notify import ledger

    state = ledger.load(settings, settings.notify_topics[0])
    totals: dict[str, int] = {}
    channels: dict[str, dict[str, int]] = {}
    for (channel, outcome), n in state.counts.items():
        totals[outcome] = totals.get(outcome, 0) + n
        channels.setdefault(channel, {})[outcome] = n
    return {"v": 1, "at_ms": int(time.time() * 1000), "totals": totals,
            "channels": [{"channel": c, "counts": counts} for c, counts in sorted(channels.items())],
            "failures": list(state.failures)[-50:], "first_start": state.first_start,
            "cursors": {str(p): c[0] for p, c in sorted(state.cursors.items())}, "settled_keys": len(state.done)}


def status_lines(settings: Settings, summary: dict[str, Any] | None, *, from_ledger: bool) -> Iterator[str]:
    """Lines for a terminal."""
    if summary is None:
        yield "notify has published no status yet (is `callstream notify` running? try --ledger)"
        return
    age = (time.time() * 1000 - summary.get("at_ms", 0)) / 1000
    source = "from the deliveries topic" if from_ledger else f"published {age:.0f} s ago"
    yield f"notify status ({source})"
    if not from_ledger:
        yield (f"  rules: {summary.get('rules')} ({summary.get('routes')} routes); alerts not yet read: "
               f"{summary.get('lag')}; deliveries owed: {summary.get('owed')}; active silences: "
               f"{summary.get('silences')}; messages that are not alerts: {summary.get('refused')}")
    totals = summary.get("totals", {})
    yield "  deliveries: " + (", ".join(f"{n} {o}" for o, n in sorted(totals.items())) or "none yet")
    for channel in summary.get("channels", []):
        counts = ", ".join(f"{n} {o}" for o, n in sorted(channel.get("counts", {}).items())) or "nothing yet"
        state = ""
        if channel.get("failing"):
            state = f" — FAILING: {channel.get('last_error')}"
        elif "waiting" in channel:
            state = f" — {channel['waiting']} waiting"
        yield f"  {channel.get('channel')}: {counts}{state}"
    failures = summary.get("failures", [])
    if failures:
        yield f"  failed deliveries (newest {min(len(failures), 20)} of those kept):"
        for failure in failures[-20:]:
            alerts = ", ".join(f"{a[0]} ({a[1]})" for a in failure.get("a", [])[:5])
            yield f"    {_when(failure.get('t'))} {failure.get('ch')}: {alerts} — {failure.get('e', '')}"


def _when(ms: Any) -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return "—"
