"""The compiled validator (``native/src/validate.rs``) against the Python reference.

``callstream_native.debug_validate(value, key)`` is the accept path only: None means
"ask Python" (Python rejects, or Rust is not certain). So, for every input here:
whenever Rust answers, Python's ``validate`` must return an Event with the same
fields; and for the events producers really send (the simulator's, the samples,
hypothesis' valid events written in plain ASCII) Rust must answer.

The extension must be built and installed (``make setup`` does it: ``pip install
./native``); if it is not importable this module fails, it does not skip.
"""

from __future__ import annotations

import json
import string
from decimal import Decimal
from typing import Any

import callstream_native  # no importorskip: a missing build is a failure
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams.domain.events import EVENT_TYPES, Event
from streams.domain.timefmt import parse_ts_us
from streams.domain.validation import MAX_VALUE_BYTES, validate
from streams.domain.wire import encode_event
from streams.simulator import Faults, Knobs, generate_all
from tests.unit.strategies import ALL_FIELDS, valid_events, valid_wire
from tests.unit.wire_samples import SAMPLE_DATA, sample

pytestmark = pytest.mark.unit

debug_validate = callstream_native.debug_validate

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START_US = parse_ts_us("2026-11-24T06:00:00Z")
BUSY_KNOBS = Knobs(outage_rate=0.1, stale_key=0.3, license_errors=0.02, dev_copy=0.05, extranet=0.05)
INT64_MAX = 2**63 - 1


# ---- comparing the two answers -------------------------------------------------------


def expected_tuple(event: Event) -> tuple:
    """What ``debug_validate`` must return for ``event`` (the fields Rust keeps)."""
    d = event.data
    data = {
        "call.started": lambda: tuple(d),
        "controller.requested": lambda: (),
        "controller.replied": lambda: (d.result,),
        "controller.bypassed": lambda: (d.reason, d.key_saved_at_us),
        "call.offered": lambda: (d.attempt,),
        "call.offer_missed": lambda: (),
        "call.forwarded": lambda: (d.to,),
        "call.answered": lambda: (d.user_id,),
        "recording.stored": lambda: (d.url, d.bytes, str(d.seconds)),
        "call.ended": lambda: (d.cause, d.by),
    }[event.type]()
    return (event.event_id, event.type, event.call_id, event.portal_id, event.ts_us, data)


def typed(x: Any) -> Any:
    """``x`` with each leaf's exact type, so that False != 0 and 1 != 1.0 here."""
    if isinstance(x, tuple):
        return tuple(typed(item) for item in x)
    return (type(x).__name__, x)


def agree(value: bytes, key: bytes | None = None) -> tuple | None:
    """Rust's answer for ``value``, asserted to be None or exactly Python's Event."""
    native = debug_validate(value, key)
    if native is None:
        return None
    reference = validate(value, key)
    assert isinstance(reference, Event), (value[:300], key, native, reference)
    assert typed(native) == typed(expected_tuple(reference)), (value[:300], key, native, reference)
    if reference.type == "recording.stored":
        assert Decimal(native[5][2]) == reference.data.seconds
        assert str(reference.data.seconds) == native[5][2]
    return native


def accepted(value: bytes, key: bytes | None = None) -> tuple:
    """``agree``, and Rust must answer (the fast path must take this message)."""
    native = agree(value, key)
    assert native is not None, (value[:300], key, validate(value, key))
    return native


def declined(value: bytes, key: bytes | None = None) -> None:
    """Rust must leave this message to Python."""
    assert debug_validate(value, key) is None, (value[:300], key, validate(value, key))


def raw(doc: dict, token: bytes | str, *, in_data: str | None = None, name: str | None = None) -> bytes:
    """``doc`` encoded with one field's value replaced by the raw JSON text ``token``."""
    target = doc["data"] if in_data else doc
    target[in_data or name] = "@@RAW@@"
    if isinstance(token, str):
        token = token.encode()
    value = orjson.dumps(doc)
    assert value.count(b'"@@RAW@@"') == 1
    return value.replace(b'"@@RAW@@"', token)


def _plain(text: str | None) -> bool:
    """Text the fast path takes as is: ASCII printable, nothing orjson escapes."""
    return text is None or all(0x20 <= ord(c) <= 0x7E for c in text) and '"' not in text and "\\" not in text


def fast_path_expected(event: Event) -> bool:
    """Whether Rust must accept ``event`` once encoded (conservative only on rare text)."""
    d = event.data
    if event.type == "call.started":
        return _plain(d.line_number)
    if event.type == "controller.replied":
        return _plain(d.config_id)
    if event.type == "recording.stored":
        # Numbers above 1.79e308 are left to Python (orjson refuses the ones that overflow).
        return _plain(d.url) and d.seconds <= Decimal("1.79e308")
    return True


# ---- the samples and the simulator: Rust must take them ------------------------------


@pytest.mark.parametrize("kind", sorted(SAMPLE_DATA))
def test_every_sample_is_accepted_with_and_without_its_key(kind: str) -> None:
    value = orjson.dumps(sample(kind))
    event = validate(value)
    assert accepted(value) == accepted(value, event.call_id.encode())
    declined(value, b"another-call")
    declined(value, b"")
    declined(value, event.call_id.encode() + b" ")


def test_typical_call_started_tuple() -> None:
    assert accepted(orjson.dumps(sample())) == (
        "evt-0001", "call.started", "call-2026-11-25-000123", "b24-acme", 1_795_601_730_123_000,
        ("outbound", "rented", "user:17", "+74951234567", "+74957654321", "+74950000000", "17", False, True),
    )


@pytest.fixture(scope="module")
def simulated() -> list:
    messages, _ = generate_all(11, 1500, 20, START_US, knobs=BUSY_KNOBS)
    return messages


def test_simulator_events_are_all_accepted(simulated: list) -> None:
    assert len(simulated) > 5000
    kinds = set()
    for message in simulated:
        native = accepted(message.value, message.key)
        kinds.add(native[1])
        assert agree(message.value) == native
    assert kinds == EVENT_TYPES


def test_simulator_faults_and_malformed_messages_agree() -> None:
    messages, _ = generate_all(5, 400, 8, START_US, faults=Faults(duplicates=0.1, shuffle=0.3,
                                                                   late_recordings=0.2, malformed=0.3))
    kinds: dict[str, int] = {}
    for message in messages:
        kinds[message.kind] = kinds.get(message.kind, 0) + 1
        if message.kind == "malformed":
            declined(message.value, message.key)
        else:
            accepted(message.value, message.key)
    assert kinds["malformed"] > 200 and kinds["event"] > 1000 and kinds["duplicate"] > 50, kinds


def test_pretty_printed_and_padded_json_is_accepted() -> None:
    doc = sample("recording.stored")
    accepted(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    accepted(json.dumps(doc, indent="\t").encode())
    accepted(b" \t\r\n" + orjson.dumps(doc) + b"\n\r\t ")
    accepted(json.dumps(doc, separators=(" , ", " : ")).encode())


# ---- hypothesis: valid events, then broken ones ----------------------------------------


@FUZZ
@given(valid_wire())
def test_valid_wire_events(pair: tuple[Event, dict]) -> None:
    event, wire = pair
    value = orjson.dumps(wire)
    assert validate(value) == event
    if fast_path_expected(event):
        accepted(value, event.call_id.encode())
        accepted(value)
    else:
        agree(value)
    declined(value, event.call_id.encode() + b"x")


@FUZZ
@given(valid_events(), st.binary(max_size=20))
def test_keys(event: Event, key: bytes) -> None:
    value = encode_event(event)
    agree(value, key)
    if key != event.call_id.encode():
        declined(value, key)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.sampled_from(["voice", "controller", "1", "+74951234567", "user:1", "ok",
                                              "2026-11-25T10:15:30Z", "https://h/x", "voicemail"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@FUZZ
@given(valid_wire(), st.data(), json_values)
def test_garbage_in_one_field(pair: tuple[Event, dict], data: st.DataObject, garbage: Any) -> None:
    wire = pair[1]
    paths = [(n,) for n in wire] + [("data", n) for n in wire["data"]] + [("data", n) for n in ALL_FIELDS]
    path = data.draw(st.sampled_from(paths))
    (wire["data"] if len(path) == 2 else wire)[path[-1]] = garbage
    agree(orjson.dumps(wire))


@FUZZ
@given(valid_wire(), st.data())
def test_dropping_fields(pair: tuple[Event, dict], data: st.DataObject) -> None:
    wire = pair[1]
    paths = [(n,) for n in wire] + [("data", n) for n in wire["data"]]
    for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3, unique=True)):
        target = wire.get("data") if len(path) == 2 else wire
        if isinstance(target, dict):
            target.pop(path[-1], None)
    agree(orjson.dumps(wire))


@FUZZ
@given(valid_wire(), st.data())
def test_byte_level_mutations(pair: tuple[Event, dict], data: st.DataObject) -> None:
    value = bytearray(orjson.dumps(pair[1]))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(value)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "ascii"]))
        if action == "insert" or at == len(value):
            value[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif action == "flip":
            value[at] ^= data.draw(st.integers(1, 255))
        elif action == "ascii":
            value[at] = data.draw(st.sampled_from(b'0123456789-+.eE"\\:,{}[]tfnu Zz'))
        else:
            del value[at]
    agree(bytes(value))
    agree(bytes(value), bytes(value[:20]))


@FUZZ
@given(st.binary(max_size=300) | st.text(string.printable, max_size=300).map(str.encode))
def test_random_bytes(value: bytes) -> None:
    agree(value)


# ---- numbers: ints, floats, seconds ------------------------------------------------------

NUMBER_TOKENS = [
    "0", "1", "2", "-0", "-1", "-0.0", "0.0", "1.0", "1.5", "61.50", "0.1e1", "1E0", "1e0", "1e+0", "1e-0",
    "01", "00", "1.", ".5", "+1", "1e", "1e+", "--1", "0x10", "1_0", "Infinity", "-Infinity", "NaN",
    "1e-7", "1e-07", "0.0000001", "1e16", "1e+16", "1E16", "1e15", "10000000000000000", "1e22", "1e23",
    "5e-324", "4.9e-324", "2.4703282292062328e-324", "2.4703282292062327e-324", "1e-400", "0e400",
    "2.2250738585072014e-308", "2.225073858507201e-308",
    "1.7e308", "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308", "1e308",
    "1.79e308", "1.791e308", "1e309", "1e400", "-1e400", "1" + "0" * 308, "1" + "0" * 309, "1" + "0" * 400,
    str(INT64_MAX), str(INT64_MAX + 1), str(2**64 - 1), str(2**64), str(2**64 + 1), "1" + "0" * 30,
    str(-(2**63)), str(-(2**63) - 1), "9007199254740993", "9007199254740993.0", "0.1", "0.2", "0.30000000000000004",
    "123456789012345678901234567890.5", "3.141592653589793238462643383279", "7200", "7200.000", "1e2",
    "100.0", "123.456e-2", "99999999999999999", "9999999999999999.0", "0.000123", "0.0001", "0.00001",
    "true", "false", "null", '"1"', '"61.5"', "[]", "[1]", "{}", '{"a":1}',
]


@pytest.mark.parametrize("name", ["attempt", "rings", "bytes", "seconds"])
def test_number_tokens_in_integer_and_seconds_fields(name: str) -> None:
    kind = {"attempt": "call.offered", "rings": "call.offered"}.get(name, "recording.stored")
    answers = 0
    for token in NUMBER_TOKENS:
        answers += agree(raw(sample(kind), token, in_data=name)) is not None
    assert answers >= 3


@pytest.mark.parametrize("token", NUMBER_TOKENS)
def test_number_tokens_as_v_and_as_unknown_fields(token: str) -> None:
    agree(raw(sample(), token, name="v"))
    doc = sample()
    agree(raw(doc, token, name="extra"))
    agree(raw(sample("call.ended"), token, in_data="extra"))
    agree(raw(sample("call.ended"), "[" + token + "]", in_data="extra"))


def test_plain_accepts_of_numbers() -> None:
    for token, seconds in [("0", "0"), ("61.5", "61.5"), ("1e-7", "1E-7"), ("1e16", "1E+16"),
                           ("7200.0", "7200.0"), ("1.0", "1.0"), ("5e-324", "5E-324"),
                           ("1.7e308", "1.7E+308"), (str(INT64_MAX), str(INT64_MAX)), ("0.0", "0.0"),
                           ("123.0", "123.0"), ("0.0001", "0.0001"), ("0.00001", "0.00001")]:
        assert accepted(raw(sample("recording.stored"), token, in_data="seconds"))[5][2] == seconds, token
    for token, answer in [("1", 1), (str(INT64_MAX), INT64_MAX)]:
        assert accepted(raw(sample("call.offered"), token, in_data="attempt"))[5] == (answer,)
    accepted(raw(sample("recording.stored"), "0", in_data="bytes"))
    for token in ["0", "-1", str(INT64_MAX + 1), str(2**64), "1.0", "1e0", "true"]:
        declined(raw(sample("call.offered"), token, in_data="attempt"))
    for token in ["-1", "1e400", str(2**63), "true", "null"]:
        declined(raw(sample("recording.stored"), token, in_data="seconds"))
    for token in ["1.0", "true", "-0", "1e0", "2"]:
        declined(raw(sample(), token, name="v"))


_number_texts = st.from_regex(r"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?\Z")


@settings(max_examples=2000, deadline=None)
@given(_number_texts | st.floats(min_value=0, allow_nan=False).map(repr)
       | st.integers(0, 2**70).map(str) | st.floats(min_value=0, max_value=1e-300).map(repr))
@example("5e-324")
@example("1.7976931348623157e308")
def test_random_seconds(token: str) -> None:
    if token in ("inf",):
        return
    value = raw(sample("recording.stored"), token, in_data="seconds")
    native = agree(value)
    reference = validate(value)
    # Plain ints and every finite float take the fast path, except: a sign (-0), integers
    # beyond 2**63 - 1 (floats for orjson past 2**64 - 1), magnitudes near the overflow.
    if isinstance(reference, Event) and not token.startswith("-") and (
            not token.isdigit() or int(token) <= INT64_MAX) and float(token) <= 1.79e308:
        assert native is not None, token


# ---- strings: ids, phones, parties, enums, text, urls, timestamps -----------------------

TEXTS = [
    "", " ", "x", "x" * 64, "x" * 65, "é", "é" * 64, "é" * 65, "a b", "a\tb", "a\nb", "\x7f", "\x00", "\u00a0",
    "\u2028", "\ufeff", "\U0001f600", "日本", "cloud pbx #2", "reg12345", "sip-2", "cfg-main", 'a"b', "a\\b", "/",
    "Ａ", "١٢٣", "+74951234567", "+7495", "+12", "+123", "+1234567890123456", "+123456789012345", "++123",
    "+１２３", "user:17", "user:", "user:" + "a" * 64, "user:" + "a" * 65, "user:a b", "USER:17", "voicemail",
    "Voicemail", "voice", "controller", "Voice", "ok", "OK", "inbound", "internal", "rented", "sip", "mp3", "wav",
    "MP3", "normal", "caller", "timeout", "queue", "busy", "rule", "no_answer", "a.b_c:d-e", "a/b", "a@b",
    "ab\u0301", "\ud800", "x\udfff",
]
TIMESTAMPS = [
    "2026-11-25T10:15:30.123Z", "2026-11-25T10:15:30Z", "2026-11-25t10:15:30z", "2026-11-25T10:15:30+00:00",
    "2026-11-25T10:15:30.123456Z", "2026-11-25T10:15:30.1234567Z", "2026-11-25T10:15:30.Z",
    "2026-11-25T10:15:30-00:00", "2026-11-25T10:15:30+01:00", "2026-11-25T10:15:30", "2026-11-25 10:15:30Z",
    "2026-02-28T00:00:00Z", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
    "2000-02-29T00:00:00Z", "2026-02-30T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z",
    "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T23:60:00Z",
    "2026-11-25T23:59:60Z", "2026-11-25T23:59:59.999999Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z", "10000-01-01T00:00:00Z", "2026-1-25T10:15:30Z", "+2026-11-25T10:15:30Z",
    "２０２６-11-25T10:15:30Z", "2026-11-25T10:15:30.１Z", "2026-11-25T10:15:30ZZ", "2026-11-25T10:15:30.123z",
    "2026-11-25T10:15:30 Z", " 2026-11-25T10:15:30Z", "2026-11-25T1:15:30Z", "2026-11-25T10:15:30.000000Z",
    "2026-11-25T10:15:30.0Z", "2026-11-25", "", "2026-11-25T10:15:30+00:0", "2026-11-25T10:15:30+0000",
]


def _string_fields() -> list[tuple[str, str | None]]:
    """(type, field) pairs, field None meaning "an envelope field" handled separately."""
    pairs = []
    for kind, data in SAMPLE_DATA.items():
        for name in data:
            pairs.append((kind, name))
    pairs += [("call.started", "extra"), ("controller.replied", "config_id")]
    return pairs


@pytest.mark.parametrize("kind,name", _string_fields())
def test_strings_in_data_fields(kind: str, name: str) -> None:
    for text in TEXTS + TIMESTAMPS:
        doc = sample(kind)
        doc["data"][name] = text
        try:
            value = orjson.dumps(doc)
        except TypeError:  # a lone surrogate: only as an escape
            value = raw(sample(kind), json.dumps(text), in_data=name)
        agree(value)
    for token in ["null", "true", "false", "1", "[]", "{}", '"\\u0041"', '"\\/"', '"\\ud83d\\ude00"']:
        agree(raw(sample(kind), token, in_data=name))
    doc = sample(kind)
    doc["data"].pop(name, None)
    agree(orjson.dumps(doc))


@pytest.mark.parametrize("name", ["event_id", "type", "call_id", "portal_id", "source", "node", "ts", "v", "data"])
def test_strings_in_envelope_fields(name: str) -> None:
    for kind in ["call.started", "controller.replied", "controller.bypassed"]:
        for text in TEXTS + TIMESTAMPS + sorted(EVENT_TYPES):
            doc = sample(kind)
            doc[name] = text
            try:
                value = orjson.dumps(doc)
            except TypeError:
                value = raw(sample(kind), json.dumps(text), name=name)
            agree(value)
            agree(value, text.encode("utf-8", "surrogatepass"))
        for token in ["null", "true", "1", "[]", "{}", '"\\u0041"', '"voi\\u0063e"']:
            agree(raw(sample(kind), token, name=name))
        doc = sample(kind)
        doc.pop(name)
        agree(orjson.dumps(doc))


@pytest.mark.parametrize("ts", TIMESTAMPS)
def test_timestamps(ts: str) -> None:
    doc = sample()
    doc["ts"] = ts
    value = orjson.dumps(doc)
    native = agree(value)
    if isinstance(validate(value), Event):
        assert native is not None
    agree(orjson.dumps({**sample("controller.bypassed"), "data": {"reason": "error", "key_saved_at": ts}}))


_ts_texts = st.builds(
    lambda y, mo, d, t, h, mi, s, frac, zone: f"{y}-{mo}-{d}{t}{h}:{mi}:{s}{frac}{zone}",
    st.text(string.digits, min_size=4, max_size=4), st.text(string.digits, min_size=1, max_size=3),
    st.text(string.digits, min_size=1, max_size=3), st.sampled_from("Tt x"),
    st.text(string.digits, min_size=2, max_size=2), st.text(string.digits, min_size=2, max_size=2),
    st.text(string.digits, min_size=2, max_size=2),
    st.just("") | st.text(string.digits, max_size=8).map(lambda f: "." + f),
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+01:00", "", "ZZ"]),
)


@settings(max_examples=1000, deadline=None)
@given(_ts_texts)
def test_random_timestamps(ts: str) -> None:
    doc = sample("controller.bypassed")
    doc["data"]["key_saved_at"] = ts
    value = orjson.dumps(doc)
    native = agree(value)
    if isinstance(validate(value), Event):
        assert native is not None, ts


URLS = [
    "https://rec.example.com/b24/1.mp3", "http://h", "HTTP://H", "hTtPs://h/x", "https://h:/x", "https://h:8080/x",
    "https://h:80a/x", "https://[2001:db8::1]/x", "https://[2001:db8::1]:443", "https://[]/x", "https://[a b]/x",
    "https://u:p@h/x", "https://@h/x", "https://u@@h/x", "https://u@/x", "https://", "http:///x", "http://h?q#f",
    "http://h#", "http://h x", "http://h/a b", "http://h/\t", "ftp://h/x", "https:/h", "https//h", "http://h/é",
    "http://запись.рф/x", "http://h/\x7f", "http://h\\x", 'http://h/"', "http://h/%20", "https://h]/x",
    "https://h[/x", "http://a:b:c/", "http://h/" + "x" * 5000, "http://1.2.3.4:5/", "http://ſ/x", "httpſ://h",
    "http://h:\u0661/", "http://h/\u2028", "http://h/\U0001f600",
]


@pytest.mark.parametrize("url", URLS)
def test_urls(url: str) -> None:
    value = orjson.dumps({**sample("recording.stored"), "data": {**SAMPLE_DATA["recording.stored"], "url": url}})
    native = agree(value)
    if isinstance(validate(value), Event) and _plain(url):
        assert native is not None, url


@FUZZ
@given(st.text(st.sampled_from("hHtTpPsS:/[]@?#.%: a1é\t\\\""), max_size=25))
def test_random_urls(url: str) -> None:
    agree(orjson.dumps({**sample("recording.stored"),
                        "data": {**SAMPLE_DATA["recording.stored"], "url": url}}))
    agree(orjson.dumps({**sample("recording.stored"),
                        "data": {**SAMPLE_DATA["recording.stored"], "url": "https://" + url}}))


@FUZZ
@given(st.text(string.ascii_letters + string.digits + "._:-+ /é" + "\x00", max_size=70))
def test_random_ids_and_phones(text: str) -> None:
    for kind, name in [("call.answered", "user_id"), ("call.started", "from"), ("call.started", "shown_number"),
                       ("call.forwarded", "to"), ("call.started", "line_number")]:
        doc = sample(kind)
        doc["data"][name] = text
        agree(orjson.dumps(doc))
    for name in ["event_id", "call_id", "node"]:
        agree(orjson.dumps({**sample(), name: text}))


# ---- JSON itself: duplicates, escapes, nesting, size, garbage ---------------------------


def test_duplicate_keys_last_wins() -> None:
    body = orjson.dumps(sample("call.ended"))[1:]
    for prefix, valid in [(b'{"v":2,', True), (b'{"type":"call.started",', True), (b'{"data":[],', True),
                          (b'{"call_id":"other",', True), (b'{"ts":"bad",', True)]:
        assert isinstance(validate(prefix + body), Event) == valid
        accepted(prefix + body)
    for suffix in [b',"v":2}', b',"type":"call.nope"}', b',"data":{}}', b',"data":null}', b',"ts":"x"}',
                   b',"v":1.0}', b',"v":true}', b',"source":"controller"}']:
        declined(b"{" + body[:-1] + suffix)
    # Inside data too.
    doc = orjson.dumps(sample("call.offered"))
    agree(doc.replace(b'"attempt":1', b'"attempt":0,"attempt":1'))
    accepted(doc.replace(b'"attempt":1', b'"attempt":0,"attempt":1'))
    declined(doc.replace(b'"attempt":1', b'"attempt":1,"attempt":0'))
    two = doc.replace(b'"data":{', b'"data":{"rule":"x"},"data":{')
    assert accepted(two) == accepted(doc)
    declined(doc.replace(b'"data":{', b'"data":{},"extra":1,"data":[],"x":{"data":{')[:-1] + b"}}")


def test_escaped_keys() -> None:
    doc = orjson.dumps(sample("call.answered"))
    # An escaped contract name is left to Python (which reads it as the name).
    agree(doc.replace(b'"v":1', b'"\\u0076":1'))
    declined(doc.replace(b'"v":1', b'"\\u0076":1'))
    agree(doc.replace(b'"user_id"', b'"user\\u005fid"'))
    agree(doc.replace(b'"event_id":', b'"v":2,"\\u0076":1,"event_id":'))
    agree(doc.replace(b'"event_id":', b'"\\u0076":2,"v":1,"event_id":'))
    # Escaped unknown names change nothing.
    for key in [b'"\\n"', b'"a\\"b"', b'"\\ud83d\\ude00"', b'"\\u00e9"', b'"\\/"', b'"v\\t"', b'"\\u0000"']:
        accepted(doc.replace(b'"v":1', b'"v":1,' + key + b":1"))
        accepted(doc.replace(b'"user_id"', key + b':{"k":[1]},"user_id"'))
    for key in [b'"\\ud800"', b'"\\udc00"', b'"\\ud800\\u0041"', b'"\\x"', b'"\\u12"', b'"\\U0041"']:
        agree(doc.replace(b'"v":1', b'"v":1,' + key + b":1"))


def test_escaped_values() -> None:
    doc = orjson.dumps(sample("controller.replied"))
    for text in [b'"\\u0041"', b'"\\ud83d\\ude00"', b'"a\\"b"', b'"\\\\"', b'"\\/"', b'"\\b\\f\\n\\r\\t"',
                 b'"\\ud800"', b'"\\udfff"', b'"\\ud800\\ud800"', b'"\\ud800x"', b'"\\u00"', b'"\\a"']:
        agree(doc.replace(b'"event_id":', b'"extra":' + text + b',"event_id":'))
        agree(doc.replace(b'"cfg-main"', text))
        agree(doc.replace(b'"ok"', text))
        agree(doc.replace(b'"evt-0001"', text))
    accepted(doc.replace(b'"event_id":', b'"extra":"\\u0041\\ud83d\\ude00\\"\\n","event_id":'))
    agree(doc.replace(b'"voice-eu-3"', b'"voice\\u002deu-3"'))


@pytest.mark.parametrize("depth", [1, 10, 61, 62, 63, 64, 200, 1023, 1030, 5000])
def test_nesting(depth: int) -> None:
    """Unknown fields nested up to 64 levels in all (the envelope being the first) take the fast path."""
    doc = orjson.dumps(sample("call.ended"))
    for nest in [b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth]:
        at_top = doc.replace(b'"v":1', b'"v":1,"x":' + nest)
        in_data = doc.replace(b'"cause"', b'"x":' + nest + b',"cause"')
        if depth <= 63:
            accepted(at_top)
        else:
            agree(at_top)
        if depth <= 62:
            accepted(in_data)
        else:
            agree(in_data)


def test_size_limit() -> None:
    doc = sample()
    doc["pad"] = ""
    base = len(orjson.dumps(doc))
    for size, ok in [(MAX_VALUE_BYTES, True), (MAX_VALUE_BYTES + 1, False)]:
        doc["pad"] = "x" * (size - base)
        value = orjson.dumps(doc)
        assert len(value) == size
        if ok:
            accepted(value)
        else:
            declined(value)


@pytest.mark.parametrize("value", [
    b"", b" ", b"{", b"}", b"{}", b"[]", b"null", b"1", b'"x"', b"{'v': 1}", b"NaN", b"Infinity", b'{"v": NaN}',
    b'{"v": 1} {}', b"\xff\xfe{}", b'{"a": "\xc3"}', b"\xef\xbb\xbf{}", '{"v": 1}'.encode("utf-16"),
    b'{"a": "tab\there"}', b"[" * 5000 + b"]" * 5000, b'{"a":1,}', b'{"a" 1}', b'{,}', b'{"a":1 "b":2}',
])
def test_not_json_or_not_an_event(value: bytes) -> None:
    declined(value)


@pytest.mark.parametrize("kind", sorted(SAMPLE_DATA))
def test_structural_edits(kind: str) -> None:
    value = orjson.dumps(sample(kind))
    variants = [
        value + b" x", value + b"\x00", value + b"\x0c", b"\x0c" + value, value[:-1], value + b"}", b"[" + value + b"]",
        value.replace(b'":', b'" :', 1), value.replace(b",", b" ,\n"), value.replace(b'"data":{', b'"data":[', 1),
        value.replace(b'"data":', b'"data":null,"d":'), value.replace(b"{", b"{\xc2\xa0"),
        value.replace(b'"v":1', b'"v":1,"bad":"\xed\xa0\x80"'),
        value.replace(b'"v":1', b'"v":1,"u":"\xf0\x9f\x98\x80"'),
        value.replace(b'"v":1', b'"v":1,"c":"\x7f\xc2\x80"'), value.replace(b'"v":1', b'"v":1,"c":"\x1f"'),
        value.replace(b'"v":1', b'"v" : 1 '), value.replace(b'"v":1', b'"v":1,"n":-'),
        value.replace(b'"v":1', b'"v":1,"n":tru'), value.replace(b'"v":1', b'"v":1,"n":nulll'),
        value.replace(b'"v":1', b'"v":1,"n":[1,]'), value.replace(b'"v":1', b'"v":1,"n":[,1]'),
        value.replace(b'"v":1', b'"v":1,"n":{"a":}'), value.replace(b'"v":1', b'"v":1,"n":{"a"}'),
        value.replace(b'"v":1', b'"v":1,"n":{1:2}'), value.replace(b'"v":1', b'"v":1,"n":[]'),
        value.replace(b'"v":1', b'"v":1,"n":{}'), value.replace(b'"v":1', b'"v":1,"n":[[],{},[{}]]'),
    ]
    for variant in variants:
        agree(variant)
    accepted(value.replace(b'"v":1', b'"v":1,"u":"\xf0\x9f\x98\x80"'))
    accepted(value.replace(b'"v":1', b'"v":1,"c":"\x7f\xc2\x80"'))
    accepted(value.replace(b'"v":1', b'"v" : 1 '))
    accepted(value.replace(b'"v":1', b'"v":1,"n":[[],{},[{}]]'))


def test_missing_and_null_optional_fields() -> None:
    for name in ["line_number", "shown_number", "user_id", "extranet", "record"]:
        doc = sample()
        doc["data"].pop(name)
        accepted(orjson.dumps(doc))
        doc["data"][name] = None
        agree(orjson.dumps(doc))
        if name in ("extranet", "record"):
            declined(orjson.dumps(doc))
        else:
            accepted(orjson.dumps(doc))
    doc = sample("controller.replied")
    doc["data"].pop("config_id")
    accepted(orjson.dumps(doc))
    for kind, data in SAMPLE_DATA.items():
        for name in data:
            doc = sample(kind)
            doc["data"].pop(name)
            agree(orjson.dumps(doc))
