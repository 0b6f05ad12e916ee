"""What a portal administrator reads."""

from __future__ import annotations

import orjson
import pytest

from notify.alerts import DETAIL_CHARS, Refusal, parse_alert
from notify.bypasses import Bypasses
from notify.keys import delivery_key, digest_key
from notify.text import alert_message, digest_message
from tests.unit.notify_samples import T0, make_alert

pytestmark = pytest.mark.unit
KEY = "0123456789abcdef0123456789abcdef"
OPENED, RESOLVED = "2026-12-03T02:00:00.000Z", "2026-12-03T02:47:30.000Z"


def _outage(state: str, **extra):
    detail = {"opened_at": OPENED, "opened_by_call_id": "c-1", "threshold_calls": 5, "window_s": 300,
              "resolved_at": RESOLVED if state == "resolved" else None, **extra}
    return make_alert(f"controller_outage:acme:{OPENED}", "controller_outage", "acme", call_id=None, state=state,
                      **detail)


def _bypasses(n: int) -> Bypasses:
    tracker = Bypasses()
    tracker.from_beginning(0)
    for i in range(n):
        tracker.see(make_alert(f"controller_bypassed:b-{i}", portal="acme", ts=f"2026-12-03T02:{i:02d}:10.000Z"))
    tracker.see(make_alert("controller_bypassed:late", portal="acme", ts="2026-12-03T03:30:00.000Z"))
    return tracker


def test_an_outage_says_portal_bypass_count_and_duration_in_words():
    opened = alert_message(_outage("open"), KEY, bypasses=_bypasses(7).count)
    assert opened.title == "Portal acme: the licence Controller is not answering"
    assert "since 2026-12-03 02:00:00 UTC" in opened.body and "5 bypassed calls within 5 min" in opened.body
    assert "Bypassed calls so far: 8" in opened.body
    resolved = alert_message(_outage("resolved"), KEY, bypasses=_bypasses(7).count)
    assert resolved.title.endswith("(resolved)")
    assert "The outage lasted 47 min 30 s" in resolved.body
    assert "7 calls bypassed the Controller meanwhile" in resolved.body
    for message in (opened, resolved):
        assert f"Alert: controller_outage:acme:{OPENED} (state: " in message.body
        assert f"Idempotency key: {KEY}" in message.body


def test_an_outage_notify_did_not_watch_from_its_start_says_the_count_is_unknown():
    tracker = Bypasses()  # notify started reading in the middle of the outage
    tracker.see(make_alert("controller_bypassed:x", portal="acme", ts="2026-12-03T02:30:00.000Z"))
    assert "an unknown number of calls" in alert_message(_outage("resolved"), KEY, bypasses=tracker.count).body
    asked = []
    tracker.fallback = lambda *args: asked.append(args) or 42
    assert "42 calls bypassed" in alert_message(_outage("resolved"), KEY, bypasses=tracker.count).body
    assert asked and asked[0][0] == "acme"


def test_the_call_links_to_the_dashboard_when_its_address_is_set():
    alert = make_alert("controller_bypassed:call/1", portal="acme", call_id="call:1", reason="timeout")
    plain = alert_message(alert, KEY)
    assert "Call: call:1" in plain.body and "http" not in plain.body
    linked = alert_message(alert, KEY, dash_url="https://dash.example/")
    assert "Call: call:1 — https://dash.example/calls/call%3A1" in linked.body
    assert "reason: timeout" in linked.body and "without the licence Controller's check" in linked.body


@pytest.mark.parametrize("kind, detail, words", [
    ("stale_key", {"key_age_s": 200_000}, "saved 55 h 33 min before the call"),
    ("license_error", {"result": "license_error"}, "licence error"),
    ("config_not_found", {"line_number": "74951234567"}, "development copy of the portal"),
    ("extranet_call", {"user_id": "u-7", "line": "rented"}, "an extranet user (u-7) placed a call on a paid line"),
    ("unrated_call", {"to": "+4930123"}, "to +4930123 matches no tariff"),
    ("recording_missing", {"user_id": "u-1", "talk_s": "61.000"}, "(employee u-1, 61.000 s of talk)"),
    ("spend_spike", {"window_start": "2026-12-03T10:00:00.000Z", "spend": "950.00", "currency": "RUB",
                     "median": "100.00", "k": "3"}, "was 950.00 RUB, over 3 × the usual 100.00"),
    ("low_asr", {"window_start": "2026-12-03T10:00:00.000Z", "calls": 80, "answered": 12, "asr": 0.15,
                 "threshold": 0.3}, "only 12 of 80 calls were answered"),
    ("recording_storage_90", {"used_bytes": 97 * 2**30, "quota_bytes": 100 * 2**30, "share": 0.97},
     "97.0 GiB of the 100.0 GiB quota (97.0 %)"),
    ("brand_new_type", {}, "alert of type brand_new_type"),
])
def test_every_alert_type_in_words(kind, detail, words):
    assert words in alert_message(make_alert(f"{kind}:x", kind, **detail), KEY).body


def test_a_withdrawn_alert_says_so():
    message = alert_message(make_alert("extranet_call:c-1", state="retracted"), KEY)
    assert message.title.endswith("(withdrawn)") and "withdrawn" in message.body


def test_a_digest_names_the_portal_counts_in_words_and_lists_every_alert_id():
    alerts = [make_alert(f"controller_bypassed:c-{n}", call_id=f"c-{n}") for n in range(3)]
    alerts.append(_outage("open"))
    key = digest_key("json://x", [delivery_key(a.alert_id, a.state, "json://x") for a in alerts])
    message = digest_message("acme", "controller", (T0, T0 + 60_000), alerts, key, dash_url="https://d/")
    assert message.title.startswith("Portal acme: 4 alerts from ")
    assert "3 × a call bypassed the licence Controller" in message.body
    for alert in alerts:
        assert f"  {alert.alert_id} ({alert.state})" in message.body
    assert "https://d/calls/c-0" in message.body and f"Idempotency key: {key}" in message.body


def test_huge_and_hostile_details_stay_bounded_text():
    value = orjson.dumps({"alert_id": "extranet_call:c-1", "type": "extranet_call", "portal_id": "p",
                          "call_id": "c-1", "ts": "2026-12-03T10:00:00.000Z",
                          "detail": {"user_id": "<script>" + "x" * 900_000, "nested": {"a": [1] * 1000},
                                     **{f"k{n}": n for n in range(500)}}})
    alert = parse_alert(value, 0, 0, T0)
    assert len(alert.detail) <= 24 and len(alert.detail["user_id"]) == DETAIL_CHARS
    assert len(alert_message(alert, KEY).body) < 2000


@pytest.mark.parametrize("value, reason", [
    (None, "not_json"), (b"\xff", "not_json"), (b"[]", "not_object"), (b"{}", "missing_field:alert_id"),
    (b'{"alert_id":"a:b","type":"a","portal_id":"p","ts":"2026-12-03T10:00:00Z","detail":{"state":"gone"}}',
     "bad_field:detail.state"),
    (b'{"alert_id":"a:b","type":"a","portal_id":"p q","ts":"2026-12-03T10:00:00Z"}', "bad_field:portal_id"),
    (b'{"alert_id":"x:b","type":"a","portal_id":"p","ts":"2026-12-03T10:00:00Z"}', "bad_field:alert_id"),
    (b'{"alert_id":"a:b","type":"a","portal_id":"p","ts":"yesterday"}', "bad_field:ts"),
    (b'{"alert_id":"a:b","type":"a","portal_id":"p","ts":"2026-12-03T10:00:00Z","detail":[1]}', "bad_field:detail"),
    (b"{" + b" " * 1_048_577 + b"}", "too_large"),
])
def test_a_message_that_is_not_an_alert_is_refused_with_its_reason(value, reason):
    refused = parse_alert(value, 3, 7, T0)
    assert isinstance(refused, Refusal) and refused.reason == reason and (refused.partition, refused.offset) == (3, 7)


def test_an_alert_without_state_is_open():
    value = b'{"alert_id":"a:b","type":"a","portal_id":"p","call_id":null,"ts":"2026-12-03T10:00:00.000Z"}'
    assert parse_alert(value, 0, 0, T0).state == "open"
