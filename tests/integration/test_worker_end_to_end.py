"""Simulator -> broker -> ``callstream worker`` -> cdrs, alerts, DLQ, checked against the pure core.

The simulator's faults (duplicates, shuffled calls, late recordings, malformed
messages) are on, and its world is tuned so that Controller outages, stale
keys, licence errors and extranet calls all happen in a few thousand calls.
"""

from __future__ import annotations

import re
import signal
from collections import Counter, defaultdict

import orjson
import pytest

from streams.domain.timefmt import parse_ts_us
from streams.simulator import Faults, Knobs, generate_all
from tests.integration.worker_expect import (
    OUTAGE,
    CdrLog,
    expect,
    latest_alerts,
    live_alerts,
    outage_problems,
    raw_bytes,
    rules_of,
)
from tests.integration.worker_harness import (
    Fleet,
    output_settings,
    produce,
    read_topic,
    wait_for,
    wait_until_done,
    worker_settings,
)

pytestmark = pytest.mark.integration
__all__ = ["worker_settings"]  # the fixture, imported for pytest

START_US = parse_ts_us("2026-11-24T06:00:00Z")  # a Tuesday, 09:00 in Moscow
FAULTS = Faults(duplicates=0.05, shuffle=0.3, late_recordings=0.3, malformed=0.02)
KNOBS = Knobs(outage_rate=0.15, stale_key=0.3, license_errors=0.02, dev_copy=0.05, extranet=0.05)
# Truth fields named as in the CDR (recording_count is checked against recording_urls).
SAME_FIELDS = ("portal_id", "direction", "line", "from", "to", "line_number", "shown_number",
               "user_id", "extranet", "started_at", "answered_at", "ended_at", "status",
               "hangup_cause", "ring_s", "talk_s", "duration_s", "queue_attempts", "forwarded_to",
               "controller", "controller_result", "recording_bytes", "recording_s", "events")


@pytest.fixture(scope="module")
def simulated():
    return generate_all(31, 3000, 10, START_US, faults=FAULTS, knobs=KNOBS)


def test_worker_end_to_end(worker_settings, simulated, tmp_path):
    settings = worker_settings
    messages, truth = simulated
    produce(settings, [(m.key, m.value) for m in messages])
    with Fleet(tmp_path) as fleet:
        worker = fleet.start(settings, "worker")
        wait_until_done(settings, [worker], timeout=240)
        worker.kill(signal.SIGUSR2)  # `kill -USR2`: the worker logs what its memory holds
        census = wait_for(lambda: _census(worker.log_path), "the worker's memory census", timeout=30)
        events = read_topic(settings, settings.topic_events)
        cdrs = read_topic(settings, settings.topic_cdrs)
        alerts = read_topic(settings, settings.topic_alerts)
        dlq = read_topic(settings, settings.topic_dlq)
        assert worker.alive
    assert len(events) == len(messages)
    for holder in (r"calls in memory \(calls_by_id\): [\d,]+ keys, [\d,]+ value bytes",
                   r"schedule: [\d,]+ calls, [\d,]+ heap entries",
                   r"outage states \(outages_by_portal\): [1-9][\d,]* keys",
                   r"archive RocksDB: [1-9]\d* databases, memtables [\d,]+ B",
                   r"glibc heap: [\d,]+ MiB from the system"):
        assert re.search(holder, census), (holder, census)
    expected = expect(events, settings)
    assert not expected.incomplete  # every simulated call ends

    log = CdrLog.of(cdrs)
    assert not log.problems, log.problems[:10]
    latest = log.latest()
    assert latest.keys() == expected.cdrs.keys()
    wrong = [c for c in latest if latest[c] != expected.cdrs[c]]
    assert not wrong, _diff(latest[wrong[0]], expected.cdrs[wrong[0]], len(wrong))
    _check_truth(latest, [t for t in truth if not t.get("malformed")])
    _check_dlq(settings, events, dlq, expected, messages, [t for t in truth if t.get("malformed")])
    _check_alerts(settings, alerts, expected, truth)


def _diff(got: dict, want: dict, count: int) -> str:
    fields = {k: (got.get(k), want.get(k)) for k in want.keys() | got.keys() if got.get(k) != want.get(k)}
    return f"{count} calls differ; {got['call_id']}: (got, expected) {fields}"


def _check_truth(latest: dict[str, dict], truth: list[dict]) -> None:
    """The simulator's own facts, independent of the pure core, agree with the latest CDRs."""
    assert latest.keys() == {t["call_id"] for t in truth}
    for t in truth:
        cdr = latest[t["call_id"]]
        got = {name: cdr[name] for name in SAME_FIELDS} | {"recording_count": len(cdr["recording_urls"])}
        want = {name: t[name] for name in SAME_FIELDS} | {"recording_count": t["recording_count"]}
        assert got == want, (t["call_id"], {k: (got[k], want[k]) for k in got if got[k] != want[k]})
    assert {t["status"] for t in truth} == {"answered", "busy", "missed", "rejected", "failed"}
    assert sum(t["recording_count"] for t in truth) > 100


def _check_dlq(settings, events: list, dlq: list, expected, messages, malformed: list[dict]) -> None:
    """Every malformed message, and nothing else, is on the DLQ once, as the contract shapes it."""
    by_position = {(r.partition, r.offset): r for r in events}
    docs = [orjson.loads(r.value) for r in dlq]
    positions = Counter((d["partition"], d["offset"]) for d in docs)
    assert max(positions.values(), default=1) == 1, "a rejected message is on the DLQ twice"
    assert {(d["partition"], d["offset"]): d for d in docs} == expected.dlq
    got = Counter()
    for record, doc in zip(dlq, docs):
        assert doc["topic"] == settings.topic_events
        original = by_position[(doc["partition"], doc["offset"])]
        assert record.key == original.key  # keyed as received
        kept = raw_bytes(doc)
        if doc["reason"] == "too_large":
            assert len(original.value) > 1024 * 1024 and original.value.startswith(kept)
            assert 4093 <= len(kept) <= 4096
        else:
            assert kept == original.value
        got[(doc["reason"], original.value)] += 1
    want = Counter()
    for line in malformed:
        message = messages[line["index"]]
        assert message.kind == "malformed" and message.key.decode() == line["key"]
        want[(line["reason"], message.value)] += 1
    assert got == want
    assert len({reason for reason, _ in want}) >= 10, "the run should show most DLQ reasons"


def _check_alerts(settings, records: list, expected, truth: list[dict]) -> None:
    """Per-call alerts equal the pure core's; outages follow the rule and come with a resolution."""
    latest = latest_alerts(records)
    per_call = {i: a for i, a in latest.items() if a["type"] != "controller_outage"}
    assert per_call.keys() == expected.alerts.keys()
    assert per_call == expected.alerts
    types = Counter(a["type"] for a in per_call.values())
    assert {"controller_bypassed", "stale_key", "license_error", "config_not_found",
            "extranet_call"} <= types.keys(), types
    stale_calls = {t["call_id"] for t in truth if t.get("stale_key")}
    assert {a["call_id"] for a in per_call.values() if a["type"] == "stale_key"} == stale_calls

    repeats = Counter(r.value for r in records)
    assert max(repeats.values()) == 1, "an alert was sent twice with the same content"
    outages = {i: a for i, a in latest.items() if a["type"] == "controller_outage"}
    assert outage_problems(outages, expected, rules_of(settings)) == []
    states: dict[str, list[str]] = defaultdict(list)
    for record in records:
        doc = orjson.loads(record.value)
        if doc["type"] == "controller_outage":
            states[doc["alert_id"]].append(doc["detail"]["state"])
    assert states, "the simulator's outages raised no controller_outage"
    unopened = {i: seq for i, seq in states.items() if seq[0] != "open"}
    # Contract: the opening bypass sends the outage with state open, its resolution the same id resolved.
    assert not unopened, (f"{len(unopened)} of {len(states)} outages never sent as open: "
                          f"{dict(list(unopened.items())[:3])}")
    assert any(seq[-1] == "resolved" for seq in states.values()), states


def test_two_runs_over_the_same_events_agree(worker_settings, simulated, tmp_path):
    """Contract: alert ids are deterministic, "so a re-run produces no duplicates".

    The first run uses the compiled core, the second the Python core only: the
    two workers' outputs must be the same as well.
    """
    settings = worker_settings.replace(native="on")
    again = output_settings(settings, "again").replace(native="off")
    messages, _ = simulated
    produce(settings, [(m.key, m.value) for m in messages])
    with Fleet(tmp_path) as fleet:
        first, second = fleet.start(settings, "first"), fleet.start(again, "second")
        wait_until_done(settings, [first], timeout=240)
        wait_until_done(again, [second], timeout=240)
        runs = [(CdrLog.of(read_topic(s, s.topic_cdrs)).latest(),
                 latest_alerts(read_topic(s, s.topic_alerts))) for s in (settings, again)]
    (cdrs_1, alerts_1), (cdrs_2, alerts_2) = runs
    assert cdrs_1 == cdrs_2
    live_1, live_2 = live_alerts(alerts_1), live_alerts(alerts_2)
    outages_1 = {i for i in live_1 if i.startswith(OUTAGE)}
    outages_2 = {i for i in live_2 if i.startswith(OUTAGE)}
    assert live_1.keys() - outages_1 == live_2.keys() - outages_2
    assert outages_1 == outages_2, (f"{len(outages_1 ^ outages_2)} of {len(outages_1 | outages_2)} "
                                    f"controller_outage ids differ between two runs, e.g. "
                                    f"{sorted(outages_1 - outages_2)[:2]} vs {sorted(outages_2 - outages_1)[:2]}")
    assert live_1 == live_2  # and each alert's latest content


def _census(log_path) -> str | None:
    """The memory census the worker logged on SIGUSR2, once it is whole (None before)."""
    text = log_path.read_text(errors="replace")
    at = text.find("memory census:")
    if at < 0:
        return None
    block = text[at:]
    return block if re.search(r"\n  [\d,]+ \w+", block) else None
