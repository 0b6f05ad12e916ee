"""Hypothesis strategies for contract v1 events, shared by every test suite.

``valid_events()`` yields :class:`Event` values of all ten types with realistic
variety (outbound operator/rented/sip, inbound rented/sip, internal calls with
``user:`` refs, optional fields null) plus edge values (64-character ids,
15-digit phones, microsecond timestamps: years 2000-9999 for ``ts``, which
contract v1.1 bounds below by 2000, and 0001-9999 for ``key_saved_at``). ``valid_wire()``
yields ``(event, wire dict)`` pairs whose dict is what a producer might send:
nulls and default booleans sometimes omitted, unknown extra fields sometimes added.
"""

from __future__ import annotations

import string
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from streams.domain import events as ev
from streams.domain.wire import event_to_dict

ID_ALPHABET = string.ascii_letters + string.digits + "._:-"
_2020_US = 1_577_836_800_000_000
_2035_US = 2_051_222_400_000_000
_MIN_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
_MAX_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z

any_ids = st.text(ID_ALPHABET, min_size=1, max_size=64)
user_ids = st.one_of(st.integers(1, 99_999).map(str), any_ids)
nodes = st.sampled_from(["voice-eu-1", "voice-eu-3", "vox.ru-msk.12", "controller-1"]) | any_ids
event_ids = st.uuids().map(str) | any_ids
call_ids = st.integers(1, 10**9).map(lambda n: f"call-{n}") | st.uuids().map(str) | any_ids
portal_ids = st.sampled_from(["b24-acme", "b24-7731", "portal.example"]) | any_ids

_country_phones = st.tuples(st.sampled_from(["7495", "7812", "1212", "4930", "375"]),
                            st.text(string.digits, min_size=7, max_size=8)).map(lambda t: "+" + "".join(t))
phones = _country_phones | st.text(string.digits, min_size=3, max_size=15).map(lambda d: "+" + d)
user_refs = user_ids.map(lambda u: f"user:{u}")
sip_ids = st.sampled_from(["reg12345", "sip-office-1", "cloud pbx #2"]) | st.text(
    st.characters(exclude_categories=("C", "Z")) | st.just(" "), min_size=1, max_size=64)

timestamps_us = st.one_of(
    st.integers(_2020_US // 1000, _2035_US // 1000).map(lambda ms: ms * 1000),  # millisecond producers
    st.integers(_2020_US, _2035_US),  # microsecond producers
    st.integers(_MIN_US, _MAX_US),  # the whole range RFC 3339 allows
)
# An event's own ts: contract v1.1 refuses one before 2000-01-01 (the upper
# bound, 24 h after the message's timestamp, is a property of the message).
_2000_US = 946_684_800_000_000
event_timestamps_us = timestamps_us.filter(lambda ts: ts >= _2000_US) | st.integers(_2000_US, _MAX_US)


@st.composite
def call_started(draw: Any) -> ev.CallStarted:
    """A call.started of one of the realistic call shapes."""
    shape = draw(st.sampled_from(["out_operator", "out_rented", "out_sip", "in_rented", "in_sip", "internal"]))
    user = draw(user_ids)
    optional_phone = st.none() | phones
    if shape == "internal":
        return ev.CallStarted("internal", "internal", f"user:{user}", draw(user_refs), None, None,
                              draw(st.none() | st.just(user)), draw(st.booleans()), False)
    if shape.startswith("in_"):
        line_number = draw(phones if shape == "in_rented" else sip_ids)
        to = line_number if shape == "in_rented" else draw(phones)
        return ev.CallStarted("inbound", shape[3:], draw(phones), to, line_number, None, None,
                              False, draw(st.booleans()))
    line_number = {"out_operator": st.none(), "out_rented": phones, "out_sip": sip_ids}[shape]
    return ev.CallStarted("outbound", shape[4:], draw(user_refs | phones), draw(phones), draw(line_number),
                          draw(optional_phone), draw(st.none() | st.just(user)),
                          draw(st.booleans()), draw(st.booleans()))


_hosts = st.sampled_from(["records.example.com", "10.0.0.7:8080", "[2001:db8::1]", "запись.рф", "cdn"])
_paths = st.text(string.ascii_letters + string.digits + "/._-%?=&#", max_size=40)
urls = st.builds(lambda scheme, host, path: f"{scheme}://{host}/{path}",
                 st.sampled_from(["http", "https", "HTTPS"]), _hosts, _paths)
seconds = st.one_of(
    st.integers(0, 7200).map(Decimal),
    st.floats(0, 7200, allow_nan=False).map(lambda x: Decimal(repr(x + 0.0))),
    st.floats(0, allow_nan=False, allow_infinity=False).map(lambda x: Decimal(repr(x + 0.0))),
)
small_positive = st.integers(1, 12) | st.integers(1, 2**63 - 1)
printable_ids = st.none() | st.sampled_from(["cfg-main", "reg12345"]) | sip_ids

PAYLOADS: dict[str, st.SearchStrategy] = {
    "call.started": call_started(),
    "controller.requested": st.just(ev.ControllerRequested()),
    "controller.replied": st.builds(ev.ControllerReplied, st.sampled_from(sorted(ev.CONTROLLER_RESULTS)),
                                    printable_ids),
    "controller.bypassed": st.builds(ev.ControllerBypassed, st.sampled_from(sorted(ev.BYPASS_REASONS)),
                                     timestamps_us),
    "call.offered": st.builds(ev.CallOffered, user_ids, small_positive,
                              st.sampled_from(sorted(ev.OFFER_RULES)), small_positive),
    "call.offer_missed": st.builds(ev.CallOfferMissed, user_ids, small_positive),
    "call.forwarded": st.builds(ev.CallForwarded, phones | st.just(ev.VOICEMAIL),
                                st.sampled_from(sorted(ev.FORWARD_REASONS))),
    "call.answered": st.builds(ev.CallAnswered, user_ids),
    "recording.stored": st.builds(ev.RecordingStored, urls, st.integers(0, 10**9) | st.integers(0, 2**63 - 1),
                                  seconds, st.sampled_from(sorted(ev.RECORDING_FORMATS))),
    "call.ended": st.builds(ev.CallEnded, st.sampled_from(sorted(ev.END_CAUSES)),
                            st.sampled_from(sorted(ev.END_BY))),
}

@st.composite
def valid_events(draw: Any, types: tuple[str, ...] = tuple(sorted(ev.EVENT_TYPES))) -> ev.Event:
    """A valid contract v1 event of one of ``types`` (default: all ten)."""
    kind = draw(st.sampled_from(types))
    return ev.Event(draw(event_ids), kind, draw(call_ids), draw(portal_ids), ev.SOURCE_OF_TYPE[kind],
                    draw(nodes), draw(event_timestamps_us), draw(PAYLOADS[kind]))


_json_ints = st.integers(-(2**63), 2**64 - 1)  # what orjson can write
_extra_values = st.none() | st.booleans() | _json_ints | st.text(max_size=10) | st.lists(_json_ints, max_size=3)
ENVELOPE_FIELDS = ("event_id", "v", "type", "call_id", "portal_id", "source", "node", "ts", "data")
DATA_FIELDS = frozenset({
    "direction", "line", "from", "to", "line_number", "shown_number", "user_id", "extranet", "record",
    "result", "config_id", "reason", "key_saved_at", "attempt", "rule", "rings", "url", "bytes",
    "seconds", "format", "cause", "by",
})
ALL_FIELDS = frozenset(ENVELOPE_FIELDS) | DATA_FIELDS
# Unknown names only: an extra named like a contract field would change the event.
_extra_names = st.text(max_size=12).filter(lambda name: name not in ALL_FIELDS)
_extra_fields = st.dictionaries(_extra_names, _extra_values, max_size=3)

# Fields a producer may leave out: nullable ones when null, booleans when false.
_OMITTABLE_NULLS = {"line_number", "shown_number", "user_id", "config_id"}
_OMITTABLE_FALSE = {"extranet", "record"}


@st.composite
def valid_wire(draw: Any) -> tuple[ev.Event, dict[str, Any]]:
    """An event and a wire dict that must validate to it (omissions and extras included)."""
    event = draw(valid_events())
    wire = event_to_dict(event)
    data = wire["data"]
    for name in sorted(_OMITTABLE_NULLS | _OMITTABLE_FALSE):
        omittable = (data.get(name, 0) is None and name in _OMITTABLE_NULLS) or (
            data.get(name) is False and name in _OMITTABLE_FALSE)
        if omittable and draw(st.booleans()):
            del data[name]
    for target in (wire, data):
        for extra, value in draw(_extra_fields).items():
            target[extra] = value
    return event, wire
