"""The CDR's wire form: the contract's field order, exact numbers, strings for money."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from streams.domain.cdr import build_cdr
from streams.domain.cdr_json import CDR_FIELDS, cdr_to_json
from tests.unit.call_samples import T0, TWO_LINE_TARIFFS, ev

pytestmark = pytest.mark.unit

CONTRACT_ORDER = ("call_id", "portal_id", "version", "direction", "line", "from", "to", "line_number",
                  "shown_number", "extranet", "user_id", "started_at", "answered_at", "ended_at", "ring_s",
                  "talk_s", "duration_s", "status", "hangup_cause", "queue_attempts", "forwarded_to",
                  "controller", "controller_result", "region", "rate_per_min", "billed_s", "cost", "currency",
                  "recording_urls", "recording_bytes", "recording_s", "events")


def test_complete_cdr_exact_bytes() -> None:
    c = build_cdr([
        ev("call.started", "s", at_us=T0 + 123_999, shown_number="+74950000000"),
        ev("controller.bypassed", "b", 0.1),
        ev("call.offered", "o", 0.2, attempt=1),
        ev("call.forwarded", "f", 0.3, to="+74951111111"),
        ev("call.answered", "a", 2.5, user_id="u9"),
        ev("call.ended", "e", 75, cause="normal", by="callee"),
        ev("recording.stored", "r", 76, url="https://r/1.mp3", bytes=1234, seconds=Decimal("72.5")),
    ], TWO_LINE_TARIFFS)
    assert cdr_to_json(c, 2) == (
        b'{"call_id":"call-1","portal_id":"p1","version":2,"direction":"outbound","line":"operator",'
        b'"from":"user:u1","to":"+74951234567","line_number":null,"shown_number":"+74950000000",'
        b'"extranet":false,"user_id":"u9","started_at":"2026-11-25T10:00:00.123Z",'
        b'"answered_at":"2026-11-25T10:00:02.500Z","ended_at":"2026-11-25T10:01:15.000Z",'
        b'"ring_s":2.376,"talk_s":72.500,"duration_s":74.876,"status":"answered","hangup_cause":"normal",'
        b'"queue_attempts":1,"forwarded_to":"+74951111111","controller":"bypassed","controller_result":null,'
        b'"region":"Russia","rate_per_min":"1.50","billed_s":120,"cost":"3.30","currency":"RUB",'
        b'"recording_urls":["https://r/1.mp3"],"recording_bytes":1234,"recording_s":72.500,"events":7}')


def test_field_order_and_types_follow_the_contract() -> None:
    c = build_cdr([ev("call.started", "s", 0), ev("call.ended", "e", 1)], TWO_LINE_TARIFFS)
    decoded = orjson.loads(cdr_to_json(c, 1))
    assert tuple(decoded) == CONTRACT_ORDER == CDR_FIELDS
    assert isinstance(decoded["talk_s"], float) and isinstance(decoded["billed_s"], int)
    assert (decoded["cost"], decoded["rate_per_min"], decoded["recording_urls"]) == ("0.00", "1.50", [])


def test_incomplete_cdr_has_nulls_where_nothing_is_known() -> None:
    c = build_cdr([ev("call.answered", "a", 1), ev("controller.replied", "r", 0, result="license_error")],
                  TWO_LINE_TARIFFS, incomplete=True)
    decoded = orjson.loads(cdr_to_json(c, 1))
    for name in ("direction", "line", "from", "to", "line_number", "shown_number", "extranet", "started_at",
                 "ended_at", "ring_s", "talk_s", "duration_s", "hangup_cause", "region", "rate_per_min",
                 "currency", "forwarded_to"):
        assert decoded[name] is None, name
    assert (decoded["status"], decoded["cost"], decoded["billed_s"], decoded["controller"],
            decoded["controller_result"], decoded["user_id"]) == ("incomplete", "0.00", 0, "checked",
                                                                  "license_error", "u1")


def test_huge_recordings_stay_exact_json() -> None:
    c = build_cdr([ev("call.started", "s", 0), ev("call.ended", "e", 1),
                   ev("recording.stored", "r1", 1, bytes=2**63 - 1, seconds=Decimal("1E+20")),
                   ev("recording.stored", "r2", 1, bytes=2**63 - 1, seconds=Decimal("0.0005"))], TWO_LINE_TARIFFS)
    data = cdr_to_json(c, 1)
    assert b'"recording_bytes":9223372036854775807,"recording_s":100000000000000000000.001,' in data
    assert orjson.loads(data)["recording_bytes"] == 2**63 - 1
    # A sum beyond the warehouse's BIGINT saturates there (contract v1.1 bounds, see state.py).
    beyond_64_bits = build_cdr([ev("call.started", "s", 0), ev("call.ended", "e", 1)] + [
        ev("recording.stored", f"r{i}", 1, bytes=2**63 - 1) for i in range(3)], TWO_LINE_TARIFFS)
    assert b'"recording_bytes":9223372036854775807,' in cdr_to_json(beyond_64_bits, 1)


def test_version_starts_at_one() -> None:
    c = build_cdr([ev("call.started", "s", 0), ev("call.ended", "e", 1)], TWO_LINE_TARIFFS)
    with pytest.raises(ValueError):
        cdr_to_json(c, 0)
