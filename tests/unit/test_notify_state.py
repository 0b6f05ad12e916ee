"""Backoff, actions (acknowledgements and silences) as events, the settled-key set, progress cursors."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import orjson
import pytest

from notify.actions import ActionError, Actions, ack_event, parse_duration, silence_event, unsilence_event
from notify.backoff import Backoff
from notify.keys import batch_key, delivery_key, digest_key, key_int
from notify.ledger import DoneSet, LedgerState
from notify.progress import Progress

pytestmark = pytest.mark.unit


def test_backoff_doubles_up_to_its_cap_with_full_jitter_and_gives_up_after_its_attempts():
    backoff = Backoff(base_s=1.0, cap_s=10.0, attempts=6)
    assert [backoff.ceiling(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    rng = random.Random(7)
    delays = [backoff.delay(3, rng) for _ in range(2000)]
    assert 0 <= min(delays) < 0.1 and 3.9 < max(delays) <= 4.0  # full jitter: anywhere in [0, ceiling]
    assert len({round(d, 6) for d in delays}) > 1900
    assert not backoff.exhausted(5) and backoff.exhausted(6)
    assert backoff.budget_s == 1 + 2 + 4 + 8 + 10
    assert Backoff(1.0, 60.0, 200).ceiling(150) == 60.0  # no overflow


def test_idempotency_keys_are_stable_and_differ_by_alert_state_and_channel():
    key = delivery_key("controller_outage:p:t", "open", "json://h/x")
    assert key == delivery_key("controller_outage:p:t", "open", "json://h/x") and len(key) == 32
    others = {delivery_key("controller_outage:p:t", "resolved", "json://h/x"),
              delivery_key("controller_outage:p:t", "open", "json://h/y"),
              delivery_key("controller_outage:p:u", "open", "json://h/x")}
    assert key not in others and len(others) == 3
    assert digest_key("c", ["b", "a"]) == digest_key("c", ["a", "b"]) != batch_key("silenced", ["a", "b"])
    assert key_int("ffffffffffffffff0000") == 2**64 - 1


def test_the_done_set_remembers_keys_across_merges():
    keys = [key_int(delivery_key(f"a:{n}", "open", "c")) for n in range(300)]
    done = DoneSet(keys[:100])
    done.MERGE_AT = 50
    for key in keys[100:200]:
        done.add(key)
    assert all(k in done for k in keys[:200]) and not any(k in done for k in keys[200:])
    assert len(done) == 200


def test_the_done_set_merges_into_one_sorted_array_of_distinct_keys():
    rng = random.Random(11)
    extremes = [0, 1, 2**63 - 1, 2**63, 2**64 - 1]  # both halves of uint64: no sign trouble in the sort
    loaded = [rng.getrandbits(64) for _ in range(500)] + extremes
    done = DoneSet(loaded + loaded[:50])  # duplicates in what the ledger gave
    done.MERGE_AT = 40
    added = [rng.getrandbits(64) for _ in range(300)]
    for start in range(0, 300, 7):
        done.add_many(added[start:start + 7])
    done.add_many(added[-40:])  # keys the array already has: merged once
    expected = sorted(set(loaded) | set(added))
    done._merge()
    assert list(done._base) == expected and len(done) == len(expected)
    assert all(k in done for k in extremes) and (2**64 - 2) not in done and 3 not in done


def test_the_ledger_state_folds_outcomes_cursors_and_the_first_start():
    state = LedgerState()
    members = [delivery_key("a:1", "open", "c"), delivery_key("a:2", "open", "c")]
    state.apply(b"k:x", orjson.dumps({"o": "delivered", "m": members, "ch": "json://h"}))
    state.apply(b"k:y", orjson.dumps({"o": "failed", "m": [delivery_key("a:3", "open", "c")], "ch": "json://h",
                                      "e": "HTTP 500", "a": [["a:3", "open"]]}))
    state.apply(b"c:2", orjson.dumps({"o": 41, "t": 5}))
    state.apply(b"first-start", orjson.dumps({"h": 1, "e": {"0": 3}}))
    for junk in (b"not json", b"[1]", orjson.dumps({"o": "delivered", "m": "nope"}), None):
        state.apply(b"k:z", junk)
    assert key_int(members[0]) in state.done and key_int(members[1]) in state.done
    assert state.cursors == {2: (41, 5)} and state.first_start == {"h": 1, "e": {"0": 3}}
    assert state.counts[("json://h", "delivered")] == 2 and state.counts[("json://h", "failed")] == 1
    assert [f["e"] for f in state.failures] == ["HTTP 500"]


def test_a_partitions_cursor_waits_for_its_first_unsettled_alert():
    progress = Progress()
    progress.read(0, 10, 100, [1, 2])
    progress.read(0, 11, 101, [])
    progress.read(0, 12, 102, [3, 1])  # key 1 is owed by two offsets (a re-sent alert)
    assert progress.cursor(0) == (10, 100) and progress.owed(1)
    progress.settle(2)
    assert progress.cursor(0) == (10, 100)
    progress.settle(1)
    assert progress.cursor(0) == (12, 102)
    progress.settle(3)
    assert progress.cursor(0) == (13, 102) and progress.pending == 0
    assert progress.cursor(5) is None


NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_actions_are_events_with_who_and_when():
    actions = Actions()
    for _, value in (ack_event("controller_outage:p:t", "dave", now=NOW),
                     silence_event("p", "stale_key", 7200, "planned work", "erin", now=NOW)):
        assert actions.apply(value)
    assert actions.acks["controller_outage:p:t"] == ("dave", "2026-12-03T10:00:00.000Z")
    (silence,) = actions.active(int(NOW.timestamp() * 1000))
    assert (silence.portal_id, silence.type, silence.by, silence.reason) == ("p", "stale_key", "erin", "planned work")
    start = int(NOW.timestamp() * 1000)
    assert silence.covers("p", "stale_key", start) and not silence.covers("p", "stale_key", start + 7_200_000)
    assert not silence.covers("p", "license_error", start) and not silence.covers("q", "stale_key", start)
    actions.apply(unsilence_event(silence.silence_id, "erin",
                                  now=datetime(2026, 12, 3, 10, 30, tzinfo=UTC))[1])
    assert actions.active(start + 1_800_001) == []


@pytest.mark.parametrize("value", [
    None, b"x", b"[]", b'{"v":2,"kind":"ack"}',
    b'{"v":1,"kind":"ack","alert_id":"a b","by":"x","at":"2026-12-03T10:00:00Z"}',
    b'{"v":1,"kind":"ack","alert_id":"a:b","by":"","at":"2026-12-03T10:00:00Z"}',
    b'{"v":1,"kind":"ack","alert_id":"a:b","by":"x","at":"soon"}',
    b'{"v":1,"kind":"silence","id":"s","by":"x","at":"2026-12-03T10:00:00Z","start_ms":2,"end_ms":1,"portal_id":"p"}',
    b'{"v":1,"kind":"silence","id":"s","by":"x","at":"2026-12-03T10:00:00Z","start_ms":1,"end_ms":2}',
    b'{"v":1,"kind":"silence","id":"s","by":"x","at":"2026-12-03T10:00:00Z","start_ms":true,"end_ms":2,"type":"t"}',
    b'{"v":1,"kind":"drop_tables","by":"x","at":"2026-12-03T10:00:00Z"}', b"{" + b" " * 20000 + b"}",
])
def test_a_hostile_action_is_counted_and_changes_nothing(value):
    actions = Actions()
    assert not actions.apply(value)
    assert actions.refused == 1 and not actions.acks and not actions.silences


@pytest.mark.parametrize("call, fragment", [
    (lambda: silence_event(None, None, 60, "r", "x"), "portal, an alert type, or both"),
    (lambda: silence_event("p q", None, 60, "r", "x"), "portal must be"),
    (lambda: silence_event("p", None, 0, "r", "x"), "more than 0 s"),
    (lambda: silence_event("p", None, 60, "  ", "x"), "give a reason"),
    (lambda: ack_event("", "x"), "alert id"),
    (lambda: parse_duration("soon"), "not a duration"),
    (lambda: parse_duration("2h and then some"), "not a duration"),
])
def test_bad_actions_are_refused_with_a_reason(call, fragment):
    with pytest.raises(ActionError, match=fragment):
        call()


def test_durations():
    assert [parse_duration(t) for t in ("90", "90s", "15m", "2h", "1d", "1h30m")] == [90, 90, 900, 7200, 86400, 5400]
