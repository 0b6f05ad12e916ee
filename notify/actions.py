"""Acknowledgements and silences: events on the actions topic, with who and when.

An acknowledgement says someone is on an alert: notify no longer sends its
``open`` state if that is still waiting (a digest, a min-hits window), and
later messages name who acknowledged it. A silence of a portal and/or an
alert type for a time: alerts whose message time falls in it are stored and
shown but not delivered (recorded as ``silenced``). A silence can be lifted
early. The topic is the only store: notify, the dashboard and the CLI all
rebuild this state by reading it, so it survives restarts and replays.
"""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

MAX_ACTION_BYTES = 16_384
MAX_REASON = 500
MAX_ACKS = 100_000  # the newest acknowledgements kept in memory
_ID = re.compile(r"[A-Za-z0-9._:-]{1,256}")
_WHO = re.compile(r"[^\x00-\x1f\x7f]{1,100}")


class ActionError(ValueError):
    """An action that cannot be made (bad arguments); the message says why."""


@dataclass(frozen=True)
class Silence:
    """Alerts of ``portal_id`` (None: any) and ``type`` (None: any) in [start_ms, end_ms) are not delivered."""

    silence_id: str
    portal_id: str | None
    type: str | None
    start_ms: int
    end_ms: int
    reason: str
    by: str
    at: str

    def covers(self, portal_id: str, kind: str, at_ms: int) -> bool:
        """True when an alert of this portal and type, at ``at_ms``, is silenced by this."""
        return ((self.portal_id is None or self.portal_id == portal_id)
                and (self.type is None or self.type == kind) and self.start_ms <= at_ms < self.end_ms)


class Actions:
    """The acknowledgements and silences read so far (fold of the actions topic)."""

    def __init__(self) -> None:
        self.acks: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self.silences: dict[str, Silence] = {}
        self.refused = 0

    def apply(self, value: bytes | None) -> bool:
        """Fold one message of the topic in; False (and counted) when it is not a valid action."""
        event = parse_action(value)
        if event is None:
            self.refused += 1
            return False
        kind = event["kind"]
        if kind == "ack":
            self.acks[event["alert_id"]] = (event["by"], event["at"])
            self.acks.move_to_end(event["alert_id"])
            while len(self.acks) > MAX_ACKS:
                self.acks.popitem(last=False)
        elif kind == "silence":
            self.silences[event["id"]] = Silence(event["id"], event.get("portal_id"), event.get("type"),
                                                 event["start_ms"], event["end_ms"], event.get("reason", ""),
                                                 event["by"], event["at"])
        elif kind == "unsilence" and event["id"] in self.silences:
            old = self.silences[event["id"]]
            lifted = min(old.end_ms, max(old.start_ms, _ms(event["at"])))
            self.silences[event["id"]] = Silence(old.silence_id, old.portal_id, old.type, old.start_ms,
                                                 lifted, old.reason, old.by, old.at)
        return True

    def silenced(self, portal_id: str, kind: str, at_ms: int) -> Silence | None:
        """The silence covering an alert of this portal and type at ``at_ms``, if any."""
        for silence in self.silences.values():
            if silence.covers(portal_id, kind, at_ms):
                return silence
        return None

    def active(self, now_ms: int) -> list[Silence]:
        """Silences in force now or later, soonest end first."""
        return sorted((s for s in self.silences.values() if s.end_ms > now_ms), key=lambda s: s.end_ms)


def parse_action(value: bytes | None) -> dict[str, Any] | None:
    """A valid action event, or None; never raises."""
    if value is None or len(value) > MAX_ACTION_BYTES:
        return None
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or event.get("v") != 1:
        return None
    by, at = event.get("by"), event.get("at")
    if not isinstance(by, str) or not _WHO.fullmatch(by) or not isinstance(at, str) or _ms(at) is None:
        return None
    kind = event.get("kind")
    if kind == "ack":
        return event if isinstance(event.get("alert_id"), str) and _ID.fullmatch(event["alert_id"]) else None
    if kind == "unsilence":
        return event if isinstance(event.get("id"), str) and _ID.fullmatch(event["id"]) else None
    if kind != "silence" or not isinstance(event.get("id"), str) or not _ID.fullmatch(event["id"]):
        return None
    portal, kind_ = event.get("portal_id"), event.get("type")
    if portal is None and kind_ is None:
        return None
    if any(v is not None and (not isinstance(v, str) or not _ID.fullmatch(v)) for v in (portal, kind_)):
        return None
    start, end = event.get("start_ms"), event.get("end_ms")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**53 for v in (start, end)):
        return None
    reason = event.get("reason", "")
    if start >= end or not isinstance(reason, str) or len(reason) > MAX_REASON:
        return None
    return event


def ack_event(alert_id: str, by: str, *, now: datetime | None = None) -> tuple[bytes, bytes]:
    """(key, value) of an acknowledgement; ActionError for bad arguments."""
    if not _ID.fullmatch(alert_id or ""):
        raise ActionError("the alert id must be 1-256 characters of A-Z a-z 0-9 . _ : -")
    event = {"v": 1, "kind": "ack", "alert_id": alert_id, "by": _who(by), "at": _stamp(now)}
    return alert_id.encode(), orjson.dumps(event)


def silence_event(portal_id: str | None, kind: str | None, for_s: float, reason: str, by: str, *,
                  now: datetime | None = None) -> tuple[bytes, bytes]:
    """(key, value) of a new silence of a portal and/or type from now for ``for_s`` seconds."""
    portal_id, kind = portal_id or None, kind or None
    if portal_id is None and kind is None:
        raise ActionError("a silence needs a portal, an alert type, or both")
    for name, value in (("portal", portal_id), ("type", kind)):
        if value is not None and not _ID.fullmatch(value):
            raise ActionError(f"the {name} must be 1-256 characters of A-Z a-z 0-9 . _ : -")
    if not 0 < for_s <= 366 * 86400:
        raise ActionError("a silence lasts more than 0 s and at most a year")
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON or not _WHO.fullmatch(reason[:100]):
        raise ActionError(f"give a reason of 1-{MAX_REASON} printable characters")
    moment = now or datetime.now(UTC)
    start = int(moment.timestamp() * 1000)
    silence_id = "silence-" + uuid.uuid4().hex[:16]
    event = {"v": 1, "kind": "silence", "id": silence_id, "portal_id": portal_id, "type": kind,
             "start_ms": start, "end_ms": start + int(for_s * 1000), "reason": reason, "by": _who(by),
             "at": _stamp(moment)}
    return silence_id.encode(), orjson.dumps(event)


def unsilence_event(silence_id: str, by: str, *, now: datetime | None = None) -> tuple[bytes, bytes]:
    """(key, value) lifting a silence now."""
    if not _ID.fullmatch(silence_id or ""):
        raise ActionError("not a silence id")
    return silence_id.encode(), orjson.dumps({"v": 1, "kind": "unsilence", "id": silence_id,
                                              "by": _who(by), "at": _stamp(now)})


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``1d``, ``1h30m`` or plain seconds -> seconds; ActionError otherwise."""
    text = (text or "").strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+)\s*([smhd])", text)
    if not parts or re.sub(r"\d+\s*[smhd]\s*", "", text):
        raise ActionError(f"not a duration: {text[:40]!r} (use 90s, 15m, 2h, 1d or 1h30m)")
    return float(sum(int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u] for n, u in parts))


def _who(by: str) -> str:
    by = (by or "").strip()[:100]
    if not _WHO.fullmatch(by):
        raise ActionError("who: 1-100 printable characters")
    return by


def _stamp(now: datetime | None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _ms(stamp: Any) -> int | None:
    if not isinstance(stamp, str) or len(stamp) > 40:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp() * 1000)
