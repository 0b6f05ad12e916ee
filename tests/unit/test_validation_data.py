"""validate(): the data fields of every event type, one hand-written case per rule."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from streams.domain.events import Event
from streams.domain.validation import validate
from tests.unit.wire_samples import SAMPLE_DATA, check, reason, sample, with_data, without

pytestmark = pytest.mark.unit

# Data fields of each type in the contract's order, and which of them may be absent.
ORDER = {
    "call.started": ["direction", "line", "from", "to", "line_number", "shown_number", "user_id",
                     "extranet", "record"],
    "controller.replied": ["result", "config_id"],
    "controller.bypassed": ["reason", "key_saved_at"],
    "call.offered": ["user_id", "attempt", "rule", "rings"],
    "call.offer_missed": ["user_id", "attempt"],
    "call.forwarded": ["to", "reason"],
    "call.answered": ["user_id"],
    "recording.stored": ["url", "bytes", "seconds", "format"],
    "call.ended": ["cause", "by"],
}
OPTIONAL = {"line_number", "shown_number", "config_id", "extranet", "record"}  # + user_id of call.started
REQUIRED = [(kind, name) for kind, names in ORDER.items() for name in names
            if name not in OPTIONAL and (kind, name) != ("call.started", "user_id")]


def test_order_table_covers_every_sample() -> None:
    assert set(ORDER) | {"controller.requested"} == set(SAMPLE_DATA)
    for kind, names in ORDER.items():
        assert list(SAMPLE_DATA[kind]) == names


@pytest.mark.parametrize("kind, name", REQUIRED)
def test_missing_required_data_field(kind: str, name: str) -> None:
    assert reason(without(sample(kind), name, in_data=True)) == f"missing_field:{name}"


@pytest.mark.parametrize("kind, name", REQUIRED)
def test_null_in_a_required_field_is_a_bad_field(kind: str, name: str) -> None:
    assert reason(with_data(kind, **{name: None})) == f"bad_field:{name}"


@pytest.mark.parametrize("kind", sorted(ORDER))
def test_data_fields_are_checked_in_contract_order(kind: str) -> None:
    doc = with_data(kind, **{name: {"bad": 1} for name in ORDER[kind]})
    for name in ORDER[kind]:
        assert reason(doc) == f"bad_field:{name}"
        doc["data"][name] = SAMPLE_DATA[kind][name]
    assert isinstance(check(doc), Event)


def test_controller_requested_ignores_any_data() -> None:
    assert isinstance(check(sample("controller.requested", data={"anything": [1]})), Event)


def test_nullable_fields_may_be_absent_or_null_and_flags_default_to_false() -> None:
    doc = sample()
    for name in ["line_number", "shown_number", "user_id", "extranet", "record"]:
        del doc["data"][name]
    absent = check(doc).data
    assert (absent.line_number, absent.shown_number, absent.user_id) == (None, None, None)
    assert (absent.extranet, absent.record) == (False, False)
    nulls = check(with_data("call.started", line_number=None, shown_number=None, user_id=None)).data
    assert (nulls.line_number, nulls.shown_number, nulls.user_id) == (None, None, None)
    assert check(without(sample("controller.replied"), "config_id", in_data=True)).data.config_id is None


def _cases(kind: str, name: str, good: list, bad: list) -> list:
    return ([pytest.param(kind, name, v, True, id=f"{name}-ok-{v!r}"[:60]) for v in good]
            + [pytest.param(kind, name, v, False, id=f"{name}-bad-{v!r}"[:60]) for v in bad])


PHONE_GOOD = ["+123", "+" + "9" * 15, "+74951234567"]
PHONE_BAD = ["+12", "+" + "9" * 16, "74951234567", "+12a4", "+١٢٣٤", "+ 1234", "", 74951234567]
ID_GOOD = ["17", "x" * 64, "a.b_c:d-E"]
ID_BAD = ["", "x" * 65, "a b", "é", 17, True]
TEXT_GOOD = [None, "reg12345", "x" * 64, "Офис 2", "a b"]
TEXT_BAD = ["", "x" * 65, "tab\there", "line\n", "\u200b", 12345, True, ["reg"]]
INT_BAD = [True, False, 2.0, "1", None, 2**63, [1]]
CASES = [
    *_cases("call.started", "direction", ["inbound", "outbound", "internal"], ["Inbound", "in", "", 1]),
    *_cases("call.started", "line", ["rented", "operator", "sip", "internal"], ["SIP", "pstn", None]),
    *_cases("call.started", "from", PHONE_GOOD + ["user:17", "user:" + "u" * 64],
            PHONE_BAD + ["user:", "user:" + "u" * 65, "User:17", "user:a b", "17"]),
    *_cases("call.started", "to", PHONE_GOOD + ["user:17"], PHONE_BAD + ["voicemail"]),
    *_cases("call.started", "line_number", TEXT_GOOD, TEXT_BAD),
    *_cases("call.started", "shown_number", [None, *PHONE_GOOD], [*PHONE_BAD, "user:17"]),
    *_cases("call.started", "user_id", [None, *ID_GOOD], [*ID_BAD, "user:17 "]),
    *_cases("call.started", "extranet", [True, False], [None, 0, 1, "true", "false"]),
    *_cases("call.started", "record", [True, False], [None, 0, 1, "yes"]),
    *_cases("controller.replied", "result", ["ok", "license_error", "config_not_found"], ["OK", "error"]),
    *_cases("controller.replied", "config_id", TEXT_GOOD, TEXT_BAD),
    *_cases("controller.bypassed", "reason", ["timeout", "unreachable", "error"], ["Timeout", "down"]),
    *_cases("controller.bypassed", "key_saved_at", ["2026-11-24T03:00:00.000001+00:00"],
            ["2026-11-24T03:00:00+01:00", "2026-02-30T00:00:00Z", "yesterday", 1_795_601_730]),
    *_cases("call.offered", "user_id", ID_GOOD, ID_BAD),
    *_cases("call.offered", "attempt", [1, 2, 2**63 - 1], [0, -1, *INT_BAD]),
    *_cases("call.offered", "rule", ["employee", "crm_responsible", "queue"], ["Queue", "crm"]),
    *_cases("call.offered", "rings", [1, 10], [0, *INT_BAD]),
    *_cases("call.offer_missed", "user_id", ID_GOOD, ID_BAD),
    *_cases("call.offer_missed", "attempt", [1, 7], [0, *INT_BAD]),
    *_cases("call.forwarded", "to", ["voicemail", *PHONE_GOOD], ["Voicemail", "user:17", *PHONE_BAD]),
    *_cases("call.forwarded", "reason", ["no_answer", "busy", "rule"], ["timeout", "BUSY"]),
    *_cases("call.answered", "user_id", ID_GOOD, ID_BAD),
    *_cases("recording.stored", "url", [
        "http://h", "https://rec.example.com/a/b.mp3?sig=x#t", "HTTPS://H/a", "https://user:pw@h:8443/x",
        "http://[2001:db8::1]:80/r.wav", "https://запись.рф/файл.mp3", "http://h:",
    ], [
        "ftp://h/a", "https:/h", "https://", "https:///path", "http://:80/x", "http://@/x", "http:// h",
        "https://h/a b", "https://h/a\tb", "https://h/\x7f", "https://h/\u00a0", "https://h:8o/",
        "https://h/\u2028", "//h/a", "h/a.mp3", "", 1,
    ]),
    *_cases("recording.stored", "bytes", [0, 1, 2**63 - 1], [-1, *INT_BAD]),
    *_cases("recording.stored", "seconds", [0, 0.0, 1.5, 7200, 1e300], [-1, -0.5, True, "1.5", None, [1]]),
    *_cases("recording.stored", "format", ["mp3", "wav"], ["MP3", "ogg"]),
    *_cases("call.ended", "cause", ["normal", "busy", "no_answer", "rejected", "failed", "license_error",
                                    "config_not_found", "forbidden"], ["Normal", "cancel"]),
    *_cases("call.ended", "by", ["caller", "callee", "system"], ["operator", None]),
]


@pytest.mark.parametrize("kind, name, value, ok", CASES)
def test_data_field_rule(kind: str, name: str, value: object, ok: bool) -> None:
    result = reason(with_data(kind, **{name: value}))
    assert result == (None if ok else f"bad_field:{name}")


def test_field_values_reach_the_event() -> None:
    offered = check(with_data("call.offered", attempt=3, rings=5)).data
    assert (offered.attempt, offered.rings, offered.rule) == (3, 5, "queue")
    bypass = check(with_data("controller.bypassed", key_saved_at="2026-11-24T03:00:00.5Z")).data
    assert bypass.key_saved_at_us == 1_795_489_200_500_000


@pytest.mark.parametrize("token, expected", [
    (b"61.5", Decimal("61.5")), (b"0", Decimal(0)), (b"7200", Decimal(7200)), (b"0.1", Decimal("0.1")),
    (b"-0.0", Decimal(0)), (b"1e-7", Decimal("1E-7")), (b"2.50", Decimal("2.5")),
])
def test_seconds_become_decimal_of_the_json_number(token: bytes, expected: Decimal) -> None:
    value = orjson.dumps(sample("recording.stored")).replace(b'"seconds":61.5', b'"seconds":' + token)
    seconds = validate(value).data.seconds
    assert isinstance(seconds, Decimal)
    assert seconds == expected
    assert str(seconds) == str(expected) or expected == 0


def test_seconds_beyond_a_double_are_refused() -> None:
    value = orjson.dumps(sample("recording.stored")).replace(b'"seconds":61.5', b'"seconds":1e400')
    assert validate(value).reason == "bad_field:seconds"


def test_data_errors_name_the_value() -> None:
    result = check(with_data("call.ended", cause="hung-up"))
    assert result.reason == "bad_field:cause"
    assert "'hung-up'" in result.error and "normal" in result.error
    assert check(without(sample("call.ended"), "cause", in_data=True)).error == "cause is missing"
