"""Issue 12: normal traffic mixed with every limit case of contract v1.1, on the real broker.

The worker and the sink must stay up; every normal call's CDR equals ``build_cdr`` of
its events; every message the contract refuses is on the DLQ with its reason; no
record produced exceeds 1 MiB; a forged CDR on ``cdrs`` never reaches the warehouse.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

import orjson
import pytest

from streams.domain.events import Event
from streams.domain.timefmt import format_ts_ms, parse_ts_us
from streams.domain.validation import validate
from streams.simulator import Faults, generate_all
from tests.integration.worker_expect import CdrLog, call_events, event, expect
from tests.integration.worker_harness import Fleet, produce, read_topic, settings_env, wait_until_done

pytestmark = pytest.mark.integration

CAP = 300  # CALLSTREAM_MAX_CALL_EVENTS for this test (the contract's default is 10,000)
MIB = 1_048_576


def _hostile(now_us: int) -> tuple[list[tuple[bytes | None, bytes]], dict[str, str], int]:
    """(key, value) messages of every v1.1 limit case, the DLQ reason of each hostile call, and
    how many events of the oversized call are refused."""
    msgs: list[tuple[bytes | None, bytes]] = []
    # An event stamped 25 h after its message's timestamp (the producer's clock: now).
    msgs.append(event("h-future", "call.started", now_us + 25 * 3600 * 1_000_000,
                      {"direction": "outbound", "line": "operator", "from": "user:u1",
                       "to": "+74951234567"}))
    # A recording with a 3,000-character URL, on a call that is otherwise normal.
    msgs += call_events("h-url", now_us - 3_600_000_000, record=True).values()
    msgs.append(event("h-url", "recording.stored", now_us - 3_500_000_000,
                      {"url": "https://rec.example/" + "a" * 2980, "bytes": 10, "seconds": 1,
                       "format": "mp3"}))
    # A call with more distinct events than the cap: started, ended, then offers.
    big = list(call_events("h-big", now_us - 7_200_000_000).values())
    offers = [event("h-big", "call.offered", now_us - 7_100_000_000 + i,
                    {"user_id": "u1", "attempt": i + 1, "rule": "queue", "rings": 1})
              for i in range(CAP + 50)]
    msgs += big + offers
    # Values of about 1 MiB full of characters JSON must escape, valid and not.
    controls = bytes(range(1, 32)) * (MIB // 31)
    msgs.append((b"h-ctl", controls[:MIB]))  # not JSON
    msgs.append((b"h-ctl", controls[:MIB] + b"!"))  # over 1 MiB: too_large
    pad = call_events("h-pad", now_us - 1_000_000_000)
    padded = orjson.loads(pad.pop("call.started")[1])
    padded["note"] = '"\\\u0001' * 90_000  # ~900 KB escaped; an unknown field: ignored, still valid
    msgs.append((b"h-pad", orjson.dumps(padded)))
    msgs += pad.values()
    refused_big = len(big) + len(offers) - CAP
    return msgs, {"h-future": "bad_field:ts", "h-url": "bad_field:url", "h-big": "call_too_large"}, refused_big


def test_hostile_traffic_leaves_the_worker_and_the_sink_up_and_every_call_right(worker_settings, tmp_path):
    settings = worker_settings.replace(max_call_events=CAP)
    now_us = int(time.time() * 1_000_000)
    start = parse_ts_us(format_ts_ms(now_us - 2 * 86_400_000_000))  # two days ago: the past is fine
    messages, _ = generate_all(41, 400, 6, start, faults=Faults(duplicates=0.05, shuffle=0.3, malformed=0.01))
    normal = [(m.key, m.value) for m in messages]
    hostile, reasons, refused_big = _hostile(now_us)
    # Keyless copies of some normal calls' events: spread over partitions by the producer.
    # Twenty calls, and two whose events include a malformed message (which of the calls get
    # one depends on the generated data): a malformed keyless message must reach the DLQ too.
    calls = sorted({m.key for m in messages if m.key})
    with_malformed = sorted({m.key for m in messages if m.key and not isinstance(validate(m.value), Event)})
    keyless_calls = set(calls[:20]) | set(with_malformed[:2])
    keyless = [(None, value) for key, value in normal if key in keyless_calls]
    normal = [(key, value) for key, value in normal if key not in keyless_calls]
    produce(settings, normal + hostile + keyless)
    forged = orjson.dumps({"call_id": "forged", "portal_id": "p", "version": 1,
                           "region": '=HYPERLINK("http://evil","x")', "cost": "-1.00"})
    produce(settings, [(b"forged", forged)], topic=settings.topic_cdrs)

    with Fleet(tmp_path) as fleet:
        worker = fleet.start(settings, "worker")
        wait_until_done(settings, [worker], timeout=300)
        events = read_topic(settings, settings.topic_events)
        cdrs = read_topic(settings, settings.topic_cdrs)
        dlq = read_topic(settings, settings.topic_dlq)
        worker.check()
        sink = subprocess.run([sys.executable, "-m", "callstream.cli", "sink", "--until-caught-up",
                               "--flush-interval", "0.2"], env=settings_env(settings),
                              capture_output=True, timeout=240)
        assert sink.returncode == 0, sink.stderr.decode()[-2000:]

    # Every keyless event was re-published under its call id, and folded only then.
    valid_keyless = [value for _, value in keyless if isinstance(validate(value), Event)]
    assert 0 < len(valid_keyless) < len(keyless)  # malformed keyless messages go to the DLQ
    assert len(events) == len(normal) + len(hostile) + len(keyless) + len(valid_keyless)
    assert len([r for r in events if r.key is None]) == len(keyless)
    rekeyed = Counter(r.value for r in events if r.key in keyless_calls)
    assert rekeyed == Counter(valid_keyless)

    expected = expect(events, settings)
    log = CdrLog.of([r for r in cdrs if r.key != b"forged"])
    assert not log.problems, log.problems[:5]
    latest = log.latest()
    complete = set(expected.cdrs) - expected.incomplete
    assert complete <= latest.keys()
    wrong = [c for c in complete if latest[c] != expected.cdrs[c]]
    assert not wrong, (len(wrong), wrong[:3])
    assert {c.decode() for c in keyless_calls} <= complete
    assert latest["h-big"]["events"] == CAP and "h-url" in latest and "h-pad" in latest

    # Every refusal is on the DLQ with its reason, and nothing else is; no record over 1 MiB.
    got = {(d["partition"], d["offset"]): d for d in (orjson.loads(r.value) for r in dlq)}
    assert {k: d["reason"] for k, d in got.items()} == {k: d["reason"] for k, d in expected.dlq.items()}
    by_call = Counter(reasons.get(r.key.decode(), "") for r in dlq if r.key)
    assert by_call["bad_field:ts"] == 1 and by_call["bad_field:url"] == 1
    assert by_call["call_too_large"] == refused_big
    assert {"too_large", "not_json"} <= {d["reason"] for d in got.values()}
    assert max(len(r.value) for r in dlq + cdrs if r.key != b"forged") < MIB
    assert all(d.get("raw_truncated") for d in got.values() if len(d.get("raw", "")) >= 65536 - 4)

    # The sink refused the forged CDR: it is in no table but rejects.
    from warehouse.reader import Reader

    with Reader(settings.warehouse) as reader:
        rows = reader.read(lambda con: con.execute("SELECT call_id FROM cdrs WHERE call_id = 'forged'").fetchall())
        rejected = reader.read(lambda con: con.execute("SELECT reason, raw FROM rejects").fetchall())
    assert rows == [] and [reason for reason, raw in rejected if b"HYPERLINK" in raw]


def test_an_unreadable_stored_state_is_noted_and_the_call_starts_afresh(worker_settings, tmp_path):
    """Garbage on the hot table's changelog (a hand-written record, a version long gone)
    must not stop the partition: the worker notes it on the DLQ and goes on."""
    settings = worker_settings
    changelog = f"{settings.worker_group}-calls_by_id-changelog"
    now_us = int(time.time() * 1_000_000)
    events = call_events("garbled", now_us - 3_600_000_000)
    with Fleet(tmp_path) as fleet:
        worker = fleet.start(settings, "worker")
        wait_until_done(settings, [worker])  # the changelog topics exist
        worker.stop()
        produce(settings, [(b"garbled", b'[3, "not a state"]')], topic=changelog)
        worker = fleet.start(settings, "worker-2")
        produce(settings, list(events.values()))
        wait_until_done(settings, [worker])
        worker.check()
        notes = [orjson.loads(r.value) for r in read_topic(settings, settings.topic_dlq)]
        cdrs = CdrLog.of(read_topic(settings, settings.topic_cdrs))
        expected = expect(read_topic(settings, settings.topic_events), settings)
    assert [n["reason"] for n in notes] == ["state_unreadable"] and notes[0]["key"] == "garbled"
    assert cdrs.latest()["garbled"] == expected.cdrs["garbled"]
