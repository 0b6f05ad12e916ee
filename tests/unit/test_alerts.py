"""Per-call alert rules (contract v1, section "Alerts"): hand-computed cases and properties.

Each rule must fire exactly when the contract says and never otherwise, with
deterministic ids, and with ``ts``/``detail`` chosen over the set of distinct
events (never by arrival order).
"""

from __future__ import annotations

import itertools
import re
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.alerts import PAID_LINES, Alert, AlertRules, alert_to_json, call_alerts, digest
from streams.domain.cdr import build_cdr, cdr_from_state, state_of_events
from streams.domain.rating import parse_tariffs
from streams.domain.state import fold, is_complete
from streams.domain.timefmt import format_ts_ms
from tests.unit.call_samples import T0, call_scenarios, deliveries, ev

pytestmark = pytest.mark.unit

HOUR_US = 3_600_000_000
RULES = AlertRules()
# Only outbound operator calls to +7... are rated: anything else that talks is unrated.
TABLE = parse_tariffs(
    "line,direction,prefix,region,rate_per_min,connect_fee,increment_s,min_s,currency,valid_from\n"
    "operator,outbound,7,Russia,1.50,0.30,60,0,RUB,2026-01-01T00:00:00Z\n")


def folded(events) -> Any:
    state = None
    for event in events:
        state, _ = fold(state, event)
    return state


def alerts_of(*events, rules: AlertRules = RULES, table=TABLE) -> list[Alert]:
    """The alerts of a call's events, with the CDR the worker would have built."""
    state = folded(events)
    cdr = cdr_from_state(state, table, incomplete=not is_complete(state))
    return call_alerts(state, cdr, rules)


def by_type(alerts: list[Alert]) -> dict[str, Alert]:
    out = {a.type: a for a in alerts}
    assert len(out) == len(alerts), "one alert per type and call"
    return out


def checked_call(**started: Any) -> list:
    """An ordinary outbound call checked by the Controller, rated, answered."""
    return [ev("call.started", "s", 0, **started), ev("controller.requested", "q", 0.1),
            ev("controller.replied", "r", 0.2, result="ok"), ev("call.answered", "a", 5),
            ev("call.ended", "e", 65)]


def bypass(eid: str, at_s: float, key_age_us: int, reason: str = "timeout"):
    ts = T0 + int(Decimal(str(at_s)) * 1_000_000)
    return ev("controller.bypassed", eid, at_us=ts, reason=reason, key_saved_at_us=ts - key_age_us)


# --- no alert at all -------------------------------------------------------------

def test_an_ordinary_checked_rated_call_raises_nothing() -> None:
    assert alerts_of(*checked_call()) == []


def test_defaults_are_the_contract_thresholds() -> None:
    assert (RULES.outage_calls, RULES.outage_window_us, RULES.stale_key_after_us) == (
        5, 300_000_000, 26 * HOUR_US)


# --- controller_bypassed ---------------------------------------------------------

def test_a_bypass_raises_controller_bypassed() -> None:
    alerts = alerts_of(*checked_call(portal="b24-acme")[:1], bypass("b", 0.25, HOUR_US, "unreachable"),
                       ev("call.ended", "e", 10))
    assert alerts == [Alert("controller_bypassed:call-1", "controller_bypassed", "b24-acme", "call-1",
                            T0 + 250_000, {"reason": "unreachable",
                                           "key_saved_at": "2026-11-25T09:00:00.250Z"})]


def test_a_bypass_alone_raises_it_before_any_cdr() -> None:
    state = folded([bypass("b", 1, HOUR_US)])
    assert [a.alert_id for a in call_alerts(state, None, RULES)] == ["controller_bypassed:call-1"]
    assert call_alerts(state, None, RULES)[0].portal_id == "p1"


def test_several_bypasses_pick_the_earliest_by_ts_then_event_id_in_any_order() -> None:
    events = [bypass("b3", 2, HOUR_US, "error"), bypass("b2", 1, 2 * HOUR_US, "unreachable"),
              bypass("b1", 1, 3 * HOUR_US, "timeout"), bypass("b0", 7, 4 * HOUR_US, "error")]
    expected = Alert("controller_bypassed:call-1", "controller_bypassed", "p1", "call-1", T0 + 1_000_000,
                     {"reason": "timeout", "key_saved_at": format_ts_ms(T0 + 1_000_000 - 3 * HOUR_US)})
    for order in itertools.permutations(events):
        assert by_type(alerts_of(ev("call.started", "s", 0), *order))["controller_bypassed"] == expected


def test_a_controller_reply_besides_the_bypass_changes_nothing_of_it() -> None:
    alerts = by_type(alerts_of(ev("call.started", "s", 0), ev("controller.replied", "r", 1, result="ok"),
                               bypass("b", 2, HOUR_US)))
    assert set(alerts) == {"controller_bypassed"}


# --- stale_key -------------------------------------------------------------------

@pytest.mark.parametrize(("age_us", "fires"), [
    (0, False), (HOUR_US, False), (26 * HOUR_US - 1, False), (26 * HOUR_US, False),
    (26 * HOUR_US + 1, True), (27 * HOUR_US, True), (400 * HOUR_US, True),
    (-5 * HOUR_US, False),  # the key saved "after" the bypass: clocks disagree, not stale
])
def test_stale_key_fires_only_strictly_after_26_hours(age_us: int, fires: bool) -> None:
    alerts = by_type(alerts_of(ev("call.started", "s", 0), bypass("b", 3, age_us)))
    assert ("stale_key" in alerts) is fires
    assert "controller_bypassed" in alerts


def test_stale_key_alert_fields() -> None:
    alerts = by_type(alerts_of(ev("call.started", "s", 0, portal="p7"),
                               bypass("b", 3.5, 26 * HOUR_US + 1, "unreachable")))
    key_at = T0 + 3_500_000 - 26 * HOUR_US - 1
    assert alerts["stale_key"] == Alert(
        "stale_key:call-1", "stale_key", "p7", "call-1", T0 + 3_500_000,
        {"key_saved_at": format_ts_ms(key_at), "key_age_s": 26 * 3600, "reason": "unreachable"})
    assert format_ts_ms(key_at) == "2026-11-24T08:00:03.499Z"  # truncated, not rounded


def test_key_age_is_whole_seconds_truncated() -> None:
    alert = by_type(alerts_of(bypass("b", 0, 30 * HOUR_US + 999_999)))["stale_key"]
    assert alert.detail["key_age_s"] == 30 * 3600


def test_custom_stale_threshold() -> None:
    rules = AlertRules(stale_key_after_us=60_000_000)
    assert "stale_key" not in by_type(alerts_of(bypass("b", 0, 60_000_000), rules=rules))
    assert "stale_key" in by_type(alerts_of(bypass("b", 0, 60_000_001), rules=rules))


def test_stale_key_uses_the_bypass_with_the_oldest_key_whatever_the_order() -> None:
    fresh_early = bypass("b1", 1, HOUR_US, "timeout")  # the earliest bypass: controller_bypassed
    stale = bypass("b2", 2, 30 * HOUR_US, "error")
    staler = bypass("b3", 3, 40 * HOUR_US, "unreachable")  # the oldest key: stale_key
    for order in itertools.permutations([fresh_early, stale, staler]):
        alerts = by_type(alerts_of(*order))
        assert alerts["controller_bypassed"].ts_us == T0 + 1_000_000
        assert alerts["controller_bypassed"].detail["reason"] == "timeout"
        assert alerts["stale_key"].ts_us == T0 + 3_000_000
        assert alerts["stale_key"].detail == {"key_saved_at": format_ts_ms(T0 + 3_000_000 - 40 * HOUR_US),
                                              "key_age_s": 40 * 3600, "reason": "unreachable"}


def test_stale_key_fires_when_any_bypass_is_stale_even_if_the_earliest_is_fresh() -> None:
    alerts = by_type(alerts_of(bypass("b1", 1, HOUR_US), bypass("b2", 900, 27 * HOUR_US)))
    assert alerts["stale_key"].ts_us == T0 + 900_000_000


def test_equally_old_keys_pick_the_earliest_bypass_by_ts_then_event_id() -> None:
    events = [bypass("b9", 5, 30 * HOUR_US, "error"), bypass("b2", 4, 30 * HOUR_US, "timeout"),
              bypass("b1", 4, 30 * HOUR_US, "unreachable")]
    for order in itertools.permutations(events):
        alert = by_type(alerts_of(*order))["stale_key"]
        assert (alert.ts_us, alert.detail["reason"]) == (T0 + 4_000_000, "unreachable")


# --- license_error, config_not_found ---------------------------------------------

@pytest.mark.parametrize("result", ["license_error", "config_not_found"])
def test_a_reply_with_that_result_raises_its_alert(result: str) -> None:
    alerts = alerts_of(ev("call.started", "s", 0, portal="p3", direction="inbound", line="rented",
                          to="+74951112233", line_number="+74951112233"),
                       ev("controller.replied", "r", 0.5, result=result),
                       ev("call.ended", "e", 1, cause=result, by="system"))
    detail = {"result": result, "line": "rented", "direction": "inbound", "line_number": "+74951112233"}
    if result == "config_not_found":
        detail["hint"] = "development copy of the portal taking calls"
    assert alerts == [Alert(f"{result}:call-1", result, "p3", "call-1", T0 + 500_000, detail)]


def test_an_ok_reply_raises_nothing_and_only_the_reply_counts() -> None:
    # call.ended with cause license_error is not a controller.replied with that result.
    assert alerts_of(ev("call.started", "s", 0), ev("controller.replied", "r", 0.5, result="ok"),
                     ev("call.ended", "e", 1, cause="license_error")) == []


def test_both_results_raise_both_alerts_each_from_its_earliest_reply_in_any_order() -> None:
    replies = [ev("controller.replied", "r1", 3, result="license_error"),
               ev("controller.replied", "r2", 1, result="license_error"),
               ev("controller.replied", "r3", 2, result="config_not_found"),
               ev("controller.replied", "r4", 9, result="ok")]
    for order in itertools.permutations(replies):
        alerts = by_type(alerts_of(ev("call.started", "s", 0), *order))
        assert set(alerts) == {"license_error", "config_not_found"}
        assert alerts["license_error"].ts_us == T0 + 1_000_000
        assert alerts["config_not_found"].ts_us == T0 + 2_000_000
        assert alerts["license_error"].alert_id == "license_error:call-1"
        assert alerts["config_not_found"].alert_id == "config_not_found:call-1"


def test_a_license_error_followed_by_an_ok_reply_still_raises_it() -> None:
    alerts = alerts_of(ev("controller.replied", "r1", 1, result="license_error"),
                       ev("controller.replied", "r2", 2, result="ok"))
    assert [a.alert_id for a in alerts] == ["license_error:call-1"]


def test_reply_alert_without_call_started_has_the_result_only_and_the_earliest_portal() -> None:
    alerts = alerts_of(ev("controller.replied", "r", 2, portal="p-late", result="config_not_found"),
                       ev("controller.requested", "q", 1, portal="p-early"))
    assert alerts == [Alert("config_not_found:call-1", "config_not_found", "p-early", "call-1",
                            T0 + 2_000_000, {"result": "config_not_found",
                                             "hint": "development copy of the portal taking calls"})]


# --- extranet_call ----------------------------------------------------------------

@pytest.mark.parametrize("line", sorted(PAID_LINES))
@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_an_extranet_user_on_a_paid_line_raises_extranet_call(line: str, direction: str) -> None:
    alerts = by_type(alerts_of(ev("call.started", "s", 1.5, extranet=True, line=line, direction=direction,
                                  user_id="x9", to="+74950000001"),
                               ev("call.ended", "e", 2, cause="forbidden", by="system")))
    assert alerts["extranet_call"] == Alert(
        "extranet_call:call-1", "extranet_call", "p1", "call-1", T0 + 1_500_000,
        {"user_id": "x9", "line": line, "direction": direction, "to": "+74950000001"})
    assert set(alerts) == {"extranet_call"}


def test_paid_lines_are_the_contracts() -> None:
    assert PAID_LINES == {"rented", "operator", "sip"}


@pytest.mark.parametrize("direction", ["internal", "outbound", "inbound"])
def test_an_extranet_user_on_an_internal_line_raises_nothing(direction: str) -> None:
    assert alerts_of(ev("call.started", "s", 0, extranet=True, line="internal", direction=direction,
                        to="user:u7"), ev("call.answered", "a", 1), ev("call.ended", "e", 30)) == []


@pytest.mark.parametrize("line", sorted(PAID_LINES))
def test_a_non_extranet_user_on_a_paid_line_raises_nothing(line: str) -> None:
    assert "extranet_call" not in by_type(alerts_of(ev("call.started", "s", 0, line=line, extranet=False)))


def test_extranet_follows_the_earliest_call_started() -> None:
    late_extranet = [ev("call.started", "s1", 0, extranet=False), ev("call.started", "s2", 1, extranet=True)]
    early_extranet = [ev("call.started", "s1", 1, extranet=False), ev("call.started", "s2", 0, extranet=True)]
    for order in itertools.permutations(late_extranet):
        assert "extranet_call" not in by_type(alerts_of(*order))
    for order in itertools.permutations(early_extranet):
        assert "extranet_call" in by_type(alerts_of(*order))


# --- unrated_call -------------------------------------------------------------------

def test_an_answered_call_with_no_tariff_row_raises_unrated_call() -> None:
    # 500 µs of talk is talk_s 0.001 (half-up), so t = 1 s: unrated.
    alerts = alerts_of(ev("call.started", "s", 2, to="+12125550100"), ev("call.answered", "a", 5),
                       ev("call.ended", "e", at_us=T0 + 5_000_500))
    assert alerts == [Alert("unrated_call:call-1", "unrated_call", "p1", "call-1", T0 + 2_000_000,
                            {"line": "operator", "direction": "outbound", "to": "+12125550100",
                             "line_number": None, "talk_s": "0.001"})]


def test_talk_that_rounds_to_zero_seconds_is_t_zero_and_raises_nothing() -> None:
    # t is talk_s (3 decimals) rounded up: 499 µs is talk_s 0.000, so t = 0.
    assert alerts_of(ev("call.started", "s", 2, to="+12125550100"), ev("call.answered", "a", 5),
                     ev("call.ended", "e", at_us=T0 + 5_000_499)) == []


def test_unrated_detail_carries_the_cdr_talk_time_as_a_string() -> None:
    alerts = alerts_of(ev("call.started", "s", 0, direction="inbound", line="rented", to="+74951234567",
                          line_number="+74951234567"),
                       ev("call.answered", "a", 1), ev("call.ended", "e", 62.5))
    assert by_type(alerts)["unrated_call"].detail == {
        "line": "rented", "direction": "inbound", "to": "+74951234567",
        "line_number": "+74951234567", "talk_s": "61.500"}


@pytest.mark.parametrize("events", [
    pytest.param([ev("call.started", "s", 0, to="+12125550100"), ev("call.ended", "e", 30, cause="no_answer")],
                 id="unanswered"),
    pytest.param([ev("call.started", "s", 0, to="+12125550100"), ev("call.answered", "a", 5),
                  ev("call.ended", "e", 5)], id="answered-zero-talk"),
    pytest.param([ev("call.started", "s", 0, to="+12125550100"), ev("call.answered", "a", 9),
                  ev("call.ended", "e", 5)], id="answered-negative-skew"),
    pytest.param(checked_call(), id="rated"),
    pytest.param([ev("call.started", "s", 0, line="internal", direction="internal", to="user:u2"),
                  ev("call.answered", "a", 1), ev("call.ended", "e", 60)], id="internal"),
    pytest.param([ev("call.started", "s", 0, to="+12125550100"), ev("call.answered", "a", 5)],
                 id="incomplete-no-end"),
    pytest.param([ev("call.answered", "a", 5), ev("call.ended", "e", 60)], id="incomplete-no-start"),
])
def test_no_unrated_call_otherwise(events: list) -> None:
    assert "unrated_call" not in by_type(alerts_of(*events))


def test_no_unrated_call_without_a_cdr() -> None:
    state = folded([ev("call.started", "s", 0, to="+12125550100"), ev("call.answered", "a", 5),
                    ev("call.ended", "e", 60)])
    assert call_alerts(state, None, RULES) == []
    assert [a.type for a in call_alerts(state, cdr_from_state(state, TABLE), RULES)] == ["unrated_call"]


def test_a_tariff_valid_only_after_the_start_leaves_the_call_unrated() -> None:
    later = parse_tariffs(
        "line,direction,prefix,region,rate_per_min,connect_fee,increment_s,min_s,currency,valid_from\n"
        "operator,outbound,7,Russia,1.50,0.30,60,0,RUB,2026-11-25T10:00:00.000001Z\n")
    assert [a.type for a in alerts_of(*checked_call(), table=later)] == ["unrated_call"]
    assert alerts_of(*checked_call(), table=parse_tariffs(
        "line,direction,prefix,region,rate_per_min,connect_fee,increment_s,min_s,currency,valid_from\n"
        "operator,outbound,7,Russia,1.50,0.30,60,0,RUB,2026-11-25T10:00:00Z\n")) == []


# --- everything at once, portal, ids -------------------------------------------------

def test_every_per_call_alert_at_once_with_their_ids_and_portal() -> None:
    alerts = alerts_of(
        ev("controller.requested", "q", -1, portal="p-first"),
        ev("call.started", "s", 0, portal="p-started", extranet=True, line="sip", to="+12125550100"),
        bypass("b", 0.5, 27 * HOUR_US),
        ev("controller.replied", "r1", 1, result="license_error"),
        ev("controller.replied", "r2", 2, result="config_not_found"),
        ev("call.answered", "a", 3), ev("call.ended", "e", 70))
    assert [a.alert_id for a in alerts] == [
        "controller_bypassed:call-1", "stale_key:call-1", "config_not_found:call-1",
        "license_error:call-1", "extranet_call:call-1", "unrated_call:call-1"]
    assert {a.portal_id for a in alerts} == {"p-started"}
    assert {a.call_id for a in alerts} == {"call-1"}


# --- the wire form ------------------------------------------------------------------

def test_alert_json_fields_in_contract_order_and_types() -> None:
    alert = Alert("stale_key:c-9", "stale_key", "p1", "c-9", T0 + 1_234_567,
                  {"key_saved_at": "2026-11-24T08:00:00.000Z", "key_age_s": 93_601, "reason": "timeout"})
    payload = alert_to_json(alert)
    assert payload == (b'{"alert_id":"stale_key:c-9","type":"stale_key","portal_id":"p1","call_id":"c-9",'
                       b'"ts":"2026-11-25T10:00:01.234Z","detail":{"key_saved_at":"2026-11-24T08:00:00.000Z",'
                       b'"key_age_s":93601,"reason":"timeout"}}')
    assert list(orjson.loads(payload)) == ["alert_id", "type", "portal_id", "call_id", "ts", "detail"]


def test_alert_json_null_call_id_and_empty_detail() -> None:
    payload = alert_to_json(Alert("controller_outage:p1:x", "controller_outage", "p1", None, 0))
    assert payload == (b'{"alert_id":"controller_outage:p1:x","type":"controller_outage","portal_id":"p1",'
                       b'"call_id":null,"ts":"1970-01-01T00:00:00.000Z","detail":{}}')


@pytest.mark.parametrize(("ts_us", "text"), [
    (T0 + 999, "2026-11-25T10:00:00.000Z"), (T0 + 999_999, "2026-11-25T10:00:00.999Z"),
    (T0 - 1, "2026-11-25T09:59:59.999Z"), (-62_135_596_800_000_000, "0001-01-01T00:00:00.000Z"),
])
def test_alert_ts_is_rfc3339_utc_milliseconds_truncated(ts_us: int, text: str) -> None:
    assert orjson.loads(alert_to_json(Alert("a:b", "a", "p", "b", ts_us)))["ts"] == text


def test_every_alert_json_round_trips_with_the_contract_shape() -> None:
    for alert in alerts_of(ev("call.started", "s", 0, extranet=True, to="+12125550100"),
                           bypass("b", 0.5, 27 * HOUR_US),
                           ev("controller.replied", "r", 1, result="license_error"),
                           ev("call.answered", "a", 3), ev("call.ended", "e", 70)):
        obj = orjson.loads(alert_to_json(alert))
        assert (obj["alert_id"], obj["type"], obj["portal_id"], obj["call_id"]) == (
            alert.alert_id, alert.type, alert.portal_id, alert.call_id)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["ts"])
        assert isinstance(obj["detail"], dict) and obj["detail"] == dict(alert.detail)


def test_digest_is_a_deterministic_short_fingerprint() -> None:
    a, b = alert_to_json(Alert("x:1", "x", "p", "1", 0)), alert_to_json(Alert("x:1", "x", "p", "1", 1000))
    assert digest(a) == digest(bytes(a)) and re.fullmatch(r"[0-9a-f]{16}", digest(a))
    assert digest(a) != digest(b)


# --- properties over whole calls -------------------------------------------------------

def _alert_json(alerts: list[Alert]) -> list[bytes]:
    return [alert_to_json(a) for a in alerts]


def _expected_types(events: list, rules: AlertRules) -> set[str]:
    """An independent oracle of which alert types a set of distinct events raises."""
    types: set[str] = set()
    bypasses = [e for e in events if e.type == "controller.bypassed"]
    if bypasses:
        types.add("controller_bypassed")
    if any(e.ts_us - e.data.key_saved_at_us > rules.stale_key_after_us for e in bypasses):
        types.add("stale_key")
    types |= {e.data.result for e in events if e.type == "controller.replied"} - {"ok"}
    starts = sorted((e for e in events if e.type == "call.started"), key=lambda e: (e.ts_us, e.event_id))
    if starts and starts[0].data.extranet and starts[0].data.line in ("rented", "operator", "sip"):
        types.add("extranet_call")
    if starts and any(e.type == "call.ended" for e in events):
        cdr = build_cdr(events, TABLE)
        row_missing = cdr.region is None and cdr.line != "internal" and cdr.direction != "internal"
        if cdr.answered_at_us is not None and cdr.talk_s > 0 and row_missing:
            types.add("unrated_call")
    return types


@settings(deadline=None, max_examples=300)
@given(st.data())
def test_alerts_are_a_function_of_the_set_of_events(data: Any) -> None:
    events = data.draw(call_scenarios())
    rules = AlertRules(stale_key_after_us=data.draw(st.sampled_from([RULES.stale_key_after_us, 60_000_000])))
    state = folded(data.draw(deliveries(events)))
    incomplete = not is_complete(state)
    got = call_alerts(state, cdr_from_state(state, TABLE, incomplete=incomplete), rules)
    reference = state_of_events(events)
    expected = call_alerts(reference, build_cdr(events, TABLE, incomplete=incomplete), rules)
    assert _alert_json(got) == _alert_json(expected)
    assert {a.type for a in got} == _expected_types(events, rules)
    for alert in got:
        assert alert.alert_id == f"{alert.type}:call-1" and alert.call_id == "call-1"
        assert alert.ts_us in {e.ts_us for e in events}
