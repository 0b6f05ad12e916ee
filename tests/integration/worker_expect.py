"""What the worker must output, computed from the pure core alone; its outputs, parsed.

- :func:`expect` takes the records actually stored in the events topic and
  returns the CDRs, per-call alerts and DLQ records the contract demands
  (``validate``, ``build_cdr``, ``call_alerts``, ``dlq_record``);
- :class:`CdrLog` and :func:`latest_alerts` read what the worker wrote, checking
  versions (1..n, no conflicting duplicates) and keys on the way;
- :func:`event`, :func:`call_events`, :func:`recording` build events by hand.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import orjson

from common.config import Settings
from streams.domain.alerts import AlertRules, alert_to_json, call_alerts
from streams.domain.cdr import build_cdr, state_of_events
from streams.domain.cdr_json import cdr_to_json
from streams.domain.dlq import CALL_TOO_LARGE, dlq_record
from streams.domain.events import Event, Rejection
from streams.domain.rating import load_tariffs
from streams.domain.state import is_complete
from streams.domain.timefmt import format_ts_ms
from streams.domain.validation import validate
from streams.domain.wire import format_ts_wire

# ---------------------------------------------------------------- outputs

def loads_exact(value: bytes) -> dict:
    """JSON with numbers kept as their text, so ``12.500`` is compared digit by digit."""
    return json.loads(value, parse_float=str)


def without_version(cdr: dict) -> dict:
    return {k: v for k, v in cdr.items() if k != "version"}


@dataclass
class CdrLog:
    """Every CDR version seen per call, checked for conflicting duplicates.

    Versions count a call's changing events, and a batch sends only its last one
    (contract v1.1), so they grow but may skip numbers."""

    versions: dict[str, dict[int, bytes]] = field(default_factory=lambda: defaultdict(dict))
    problems: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, records: list) -> CdrLog:
        log = cls()
        for record in records:
            doc = orjson.loads(record.value)
            call_id, version = doc["call_id"], doc["version"]
            if record.key != call_id.encode():
                log.problems.append(f"{call_id} v{version}: key {record.key!r}")
            body = orjson.dumps(without_version(loads_exact(record.value)))
            seen = log.versions[call_id].get(version)
            if seen is not None and seen != body:
                before, now = orjson.loads(seen), orjson.loads(body)
                differ = {f: (before.get(f), now.get(f)) for f in sorted(set(before) | set(now))
                          if before.get(f) != now.get(f)}
                log.problems.append(f"{call_id} v{version} emitted twice with different content "
                                    f"(offset {record.offset}): {differ}")
            log.versions[call_id][version] = body
        for call_id, by_version in log.versions.items():
            if min(by_version) < 1:
                log.problems.append(f"{call_id}: versions {sorted(by_version)} do not start at 1 or more")
        return log

    def latest(self) -> dict[str, dict]:
        """call_id -> the highest version's CDR (without ``version``), numbers as text."""
        return {call_id: orjson.loads(by_version[max(by_version)])
                for call_id, by_version in self.versions.items()}

    def top_version(self, call_id: str) -> int:
        return max(self.versions[call_id]) if call_id in self.versions else 0


def latest_alerts(records: list) -> dict[str, dict]:
    """alert_id -> its latest message, for the alerts that stand (alerts of one portal share a
    partition, so order holds). An alert whose latest state is ``retracted`` was withdrawn:
    a late verdict changed the portal's history, or a late event the call's facts, and it
    is not an alert any more."""
    latest: dict[str, dict] = {}
    for record in records:
        doc = orjson.loads(record.value)
        assert record.key == doc["portal_id"].encode(), (record.key, doc)
        latest[doc["alert_id"]] = doc
    return {i: doc for i, doc in latest.items() if doc["detail"].get("state") != "retracted"}


# ---------------------------------------------------------------- expectations

@dataclass
class Expected:
    """What the contract demands of the worker for the records of an events topic."""

    cdrs: dict[str, dict]                    # call_id -> CDR without version (numbers as text)
    incomplete: set[str]                     # calls without both call.started and call.ended
    alerts: dict[str, dict]                  # per-call alert_id -> alert
    dlq: dict[tuple[int, int], dict]         # (partition, offset) -> DLQ record
    events: dict[str, list[Event]]           # call_id -> its valid events (copies included)
    bypasses: dict[str, dict[str, int]]      # portal -> call -> earliest bypass ts
    checked: dict[str, dict[str, int]]       # portal -> call -> earliest reply ts (not bypassed)


def expect(records: list, settings: Settings) -> Expected:
    """The contract's outputs for these records of the events topic, from the pure core alone.

    ``records`` in offset order per partition. Contract v1.1: ts is judged against the
    message's timestamp; a keyless event is folded through its re-keyed copy (which the
    worker appends to the topic), not itself; a call's distinct events beyond the first
    ``max_call_events`` in log order are DLQ records of ``call_too_large``.
    """
    tariffs, rules, topic = load_tariffs(settings.tariffs_path), rules_of(settings), settings.topic_events
    events: dict[str, list[Event]] = defaultdict(list)
    distinct: dict[str, set[str]] = defaultdict(set)
    dlq: dict[tuple[int, int], dict] = {}
    for record in records:
        result = validate(record.value, record.key, record.timestamp)
        if isinstance(result, Rejection):
            dlq[(record.partition, record.offset)] = dlq_record(
                result, topic, record.partition, record.offset, record.value)
        elif record.key is None:
            continue
        elif (result.event_id not in distinct[result.call_id]
              and len(distinct[result.call_id]) >= settings.max_call_events):
            dlq[(record.partition, record.offset)] = dlq_record(
                CALL_TOO_LARGE, topic, record.partition, record.offset, record.value)
        else:
            distinct[result.call_id].add(result.event_id)
            events[result.call_id].append(result)
    cdrs, incomplete, alerts = {}, set(), {}
    bypasses: dict[str, dict[str, int]] = defaultdict(dict)
    checked: dict[str, dict[str, int]] = defaultdict(dict)
    for call_id, call_events in events.items():
        state = state_of_events(call_events)
        complete = is_complete(state)
        if not complete:
            incomplete.add(call_id)
        cdr = build_cdr(call_events, tariffs, incomplete=not complete, max_events=settings.max_call_events)
        cdrs[call_id] = without_version(loads_exact(cdr_to_json(cdr, 1)))
        for alert in call_alerts(state, cdr, rules):
            alerts[alert.alert_id] = orjson.loads(alert_to_json(alert))
        if state.bypassed is not None:
            bypasses[cdr.portal_id][call_id] = state.bypassed.ts_us
        elif state.replied_first:
            checked[cdr.portal_id][call_id] = min(state.replied_first).ts_us
    return Expected(cdrs, incomplete, alerts, dlq, dict(events), dict(bypasses), dict(checked))


def rules_of(settings: Settings) -> AlertRules:
    """The alert thresholds the settings give the worker."""
    return AlertRules(outage_calls=settings.outage_calls,
                      outage_window_us=int(settings.outage_window * 1_000_000),
                      stale_key_after_us=int(settings.stale_key_after * 1_000_000))


def raw_bytes(dlq_doc: dict) -> bytes:
    """The original bytes a DLQ record keeps (``raw`` text or ``raw_b64``)."""
    if "raw_b64" in dlq_doc:
        assert "raw" not in dlq_doc, dlq_doc
        return base64.b64decode(dlq_doc["raw_b64"])
    return dlq_doc["raw"].encode("utf-8")


OUTAGE = "controller_outage:"


def live_alerts(alerts: dict[str, dict]) -> dict[str, dict]:
    """The latest alerts minus those whose latest state is ``retracted`` (history changed).

    ``retracted`` is the worker's one addition to the contract's alert states: an
    alert sent before a late event showed that the set of events does not raise it.
    """
    return {i: a for i, a in alerts.items() if a["detail"].get("state") != "retracted"}


def outage_problems(alerts: dict[str, dict], expected: Expected, rules: AlertRules) -> list[str]:
    """Ways the ``controller_outage`` alerts break the contract's rule (empty when none).

    A retracted outage is only checked for its id and opening bypass.
    """
    problems = []
    for alert_id, alert in alerts.items():
        if alert["type"] != "controller_outage":
            continue
        portal, detail = alert["portal_id"], alert["detail"]
        bypassed = expected.bypasses.get(portal, {})
        opened_us = bypassed.get(detail["opened_by_call_id"])
        if opened_us is None or detail["opened_at"] != format_ts_ms(opened_us):
            problems.append(f"{alert_id}: opened by {detail['opened_by_call_id']} at "
                            f"{detail['opened_at']}, not a bypass of this portal at that ts")
            continue
        # The id names the opening bypass's ts as on the wire (ms, or us when it has them).
        if alert_id != f"controller_outage:{portal}:{format_ts_wire(opened_us)}":
            problems.append(f"{alert_id}: id does not name portal and opening bypass ts")
        if detail["state"] == "retracted":
            continue
        within = [ts for ts in bypassed.values() if opened_us - rules.outage_window_us <= ts <= opened_us]
        if len(within) < rules.outage_calls:
            problems.append(f"{alert_id}: only {len(within)} bypasses within the window")
        if detail["state"] == "resolved":
            by = detail["resolved_by_call_id"]
            at = expected.checked.get(portal, {}).get(by)
            if at is None or format_ts_ms(at) != detail["resolved_at"] or at <= opened_us:
                problems.append(f"{alert_id}: resolved by {by} at {detail['resolved_at']}, "
                                "not a later checked call of this portal")
        elif detail["state"] != "open":
            problems.append(f"{alert_id}: state {detail['state']!r}")
    return problems


# ---------------------------------------------------------------- hand-built events

def event(call_id: str, type_: str, ts_us: int, data: dict | None = None, *,
          portal: str = "portal-1", event_id: str | None = None) -> tuple[bytes, bytes]:
    """One contract-v1 event as a (key, value) message."""
    source = "controller" if type_ == "controller.replied" else "voice"
    doc = {"event_id": event_id or uuid.uuid4().hex, "v": 1, "type": type_, "call_id": call_id,
           "portal_id": portal, "source": source, "node": "ctl-1" if source == "controller" else "vs-1",
           "ts": format_ts_ms(ts_us), "data": data or {}}
    return call_id.encode(), orjson.dumps(doc)


def call_events(call_id: str, start_us: int, *, record: bool = False,
                portal: str = "portal-1") -> dict[str, tuple[bytes, bytes]]:
    """An answered outbound operator call to Moscow (8 s ring, 95.5 s talk), by event type."""
    s = 1_000_000
    started = {"direction": "outbound", "line": "operator", "from": "user:u1", "to": "+74951234567",
               "line_number": None, "shown_number": None, "user_id": "u1", "extranet": False,
               "record": record}
    events = {
        "call.started": event(call_id, "call.started", start_us, started, portal=portal),
        "controller.requested": event(call_id, "controller.requested", start_us + s // 10, portal=portal),
        "controller.replied": event(call_id, "controller.replied", start_us + s // 5,
                                    {"result": "ok", "config_id": "cfg-1"}, portal=portal),
        "call.answered": event(call_id, "call.answered", start_us + 8 * s, {"user_id": "u1"},
                               portal=portal),
        "call.ended": event(call_id, "call.ended", start_us + 103_500_000,
                            {"cause": "normal", "by": "caller"}, portal=portal),
    }
    if record:
        events["recording.stored"] = recording(call_id, start_us + 105 * s, 760_000, portal=portal)
    return events


def recording(call_id: str, ts_us: int, size: int, *, portal: str = "portal-1") -> tuple[bytes, bytes]:
    """A ``recording.stored`` event of ``size`` bytes at a fresh URL."""
    url = f"https://rec.example.net/{call_id}/{uuid.uuid4().hex[:8]}.mp3"
    return event(call_id, "recording.stored", ts_us,
                 {"url": url, "bytes": size, "seconds": 95.5, "format": "mp3"}, portal=portal)


def final_verdicts(expected: Expected) -> dict[tuple[str, str], tuple[str, int]]:
    """(portal, call) -> (verdict, ts_us) of the set of each call's events."""
    verdicts = {(portal, call): ("bypassed", ts) for portal, calls in expected.bypasses.items()
                for call, ts in calls.items()}
    verdicts.update({(portal, call): ("checked", ts) for portal, calls in expected.checked.items()
                     for call, ts in calls.items()})
    return verdicts


def set_form_outages(expected: Expected, rules: AlertRules) -> dict[str, dict]:
    """The ``controller_outage`` alerts of the set of final verdicts (alert_id -> alert): what
    every run must converge to, computed without the worker (warehouse.replay's oracle)."""
    from streams.domain.outages import PortalSignal
    from warehouse.replay import outage_alerts

    signals = sorted((PortalSignal(portal, call, verdict, ts)
                      for (portal, call), (verdict, ts) in final_verdicts(expected).items()),
                     key=lambda s: (s.portal_id, s.ts_us, s.call_id))
    return {i: orjson.loads(p) for i, p in outage_alerts(signals, rules).items()}


def signal_differences(signal_records: list, expected: Expected, portals: set[str]) -> list[str]:
    """Calls of ``portals`` whose last verdict on the portal-signals topic is not the set form's.

    Tells a wrong outage apart: when this is empty the verdicts reached the outage
    agent right and the fault is in its state; otherwise the signals were wrong.
    """
    last: dict[tuple[str, str], tuple[str, int]] = {}
    for record in signal_records:  # a portal's signals share one partition: topic order per portal
        portal = record.key.decode()
        for call_id, verdict, ts_us in orjson.loads(record.value):
            last[(portal, call_id)] = (verdict, ts_us)
    want = final_verdicts(expected)
    return [f"{portal}/{call}: signalled {last.get((portal, call))}, set form {want.get((portal, call))}"
            for portal, call in sorted(set(last) | set(want))
            if portal in portals and last.get((portal, call)) != want.get((portal, call))]
