"""Notify's fast paths decide exactly as the checks they stand in for (catch-up speed, issue 14)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.config import Settings
from common.kafka_clients import librdkafka_options
from notify import alerts
from notify.bypasses import _ms
from streams.domain.timefmt import parse_ts_us

pytestmark = pytest.mark.unit

GOOD = {"alert_id": "controller_bypassed:c-1", "type": "controller_bypassed", "portal_id": "acme",
        "call_id": "c-1", "ts": "2026-12-03T02:00:00.000Z", "detail": {"state": "open", "reason": "timeout"}}
# Values that are almost right: each breaks one rule of a field, or none.
ODD = st.sampled_from(["", "x", "a" * 64, "a" * 65, "a" * 257, "a\x00b", "Ab", "a-b", "ab\n", "é", "c:1",
                       "controller_bypassed:", "2026-12-03T02:00:00Z", "2026-12-03T02:00:00.1234567Z",
                       "２０２６-12-03T02:00:00Z", "2026-12-03T02:00:00+01:00", "2026-12-03t02:00:00z"])
VALUE = st.one_of(ODD, st.none(), st.integers(-(2**63), 2**63 - 1), st.lists(st.integers(0, 9), max_size=2),
                  st.text(max_size=8))
DETAIL = st.one_of(st.none(), st.integers(0, 9), st.dictionaries(
    st.one_of(st.sampled_from(["state", "reason", "k" * 65]), st.text(max_size=3)),
    st.one_of(st.sampled_from(["open", "resolved", "retracted", "closed"]), st.none(), st.booleans(),
              st.floats(allow_nan=False), st.text(max_size=300), st.lists(st.integers(0, 9), max_size=2)),
    max_size=30))


@settings(max_examples=600, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(["alert_id", "type", "portal_id", "call_id", "ts"]), VALUE),
       drop=st.sets(st.sampled_from(list(GOOD))), detail=DETAIL)
def test_parse_alert_fast_path_agrees_with_the_field_checks(changes, drop, detail):
    obj = {**GOOD, **changes, "detail": detail}
    for name in drop:
        obj.pop(name, None)
    value = orjson.dumps(obj)
    assert alerts.parse_alert(value, 1, 2, 3) == alerts._checked(value, 1, 2, 3)


def test_parse_alert_fast_path_keeps_the_reasons():
    assert alerts.parse_alert(orjson.dumps(GOOD), 0, 5, 9).alert_id == "controller_bypassed:c-1"
    for broken, reason in (({**GOOD, "portal_id": "a\x00b"}, "bad_field:portal_id"),
                           ({**GOOD, "call_id": ""}, "bad_field:call_id"),
                           ({**GOOD, "detail": {"state": ["open"]}}, "bad_field:detail.state"),
                           ({**GOOD, "alert_id": "stale_key:c-1"}, "bad_field:alert_id")):
        refused = alerts.parse_alert(orjson.dumps(broken), 0, 5, 9)
        assert isinstance(refused, alerts.Refusal) and refused.reason == reason
    # A ts with non-ASCII digits is what the contract's pattern admits: the checks decide, as before.
    unicode_ts = {**GOOD, "ts": "２０２６-12-03T02:00:00Z"}
    assert alerts.parse_alert(orjson.dumps(unicode_ts), 0, 0, 0) == alerts._checked(orjson.dumps(unicode_ts), 0, 0, 0)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?"
                               r"([Zz]|\+00:00|\+01:00)?\Z"), st.text(max_size=30)))
def test_bypass_time_parse_agrees_with_the_contract_parser(text):
    micros = parse_ts_us(text)
    if micros is not None:  # every contract timestamp: the day-cached parse gives the same millisecond
        assert _ms(text) == micros // 1000


def test_alert_reader_speaks_librdkafka_with_the_project_security():
    plain = librdkafka_options(Settings.from_env().replace(bootstrap="h:1"))
    assert plain == {"bootstrap.servers": "h:1", "isolation.level": "read_committed", "security.protocol": "PLAINTEXT"}
    secure = librdkafka_options(Settings.from_env().replace(
        bootstrap="h:1", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="u",
        sasl_password="p", ssl_cafile="/ca.pem"))
    assert secure["security.protocol"] == "SASL_SSL" and secure["sasl.mechanism"] == "SCRAM-SHA-512"
    assert secure["sasl.username"] == "u" and secure["sasl.password"] == "p" and secure["ssl.ca.location"] == "/ca.pem"
