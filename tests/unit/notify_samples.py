"""Hand-made alerts and routes for notify's unit tests."""

from __future__ import annotations

from typing import Any

from notify.alerts import Alert
from notify.rules import Route

T0 = 1_795_430_000_000  # ms: 2026-11-22T...


def make_alert(alert_id: str = "controller_bypassed:c-1", kind: str | None = None, portal: str = "p-1", *,
               call_id: str | None = "c-1", state: str = "open", at_ms: int = T0, partition: int = 0,
               offset: int = 0, ts: str = "2026-12-03T10:00:00.000Z", **detail: Any) -> Alert:
    """An alert as notify reads it."""
    return Alert(alert_id, kind or alert_id.split(":", 1)[0], portal, call_id, ts, state, detail,
                 partition, offset, at_ms)


def make_route(index: int = 1, *, channels: tuple[str, ...] = ("json://127.0.0.1:1/hook",), types=(), portals=(),
               states=("open", "resolved", "retracted"), group_s: int = 0, min_hits: int = 1, window_s: int = 300,
               cont: bool = False, name: str | None = None) -> Route:
    """A route of a rules file."""
    return Route(index, name or f"route {index}", frozenset(types), frozenset(portals), frozenset(states),
                 channels, group_s, min_hits, window_s, cont)
