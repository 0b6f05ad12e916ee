"""Rating by hand (contract v1, section "Rating"): rounding, prefixes, history, unrated calls."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streams.domain.cdr import build_cdr
from streams.domain.cdr_json import cdr_to_json
from streams.domain.rating import TariffError, TariffRow, TariffTable, digits_only, parse_tariffs, rate_call
from streams.domain.timefmt import parse_ts_us
from tests.unit.call_samples import ev

pytestmark = pytest.mark.unit

HEADER = "line,direction,prefix,region,rate_per_min,connect_fee,increment_s,min_s,currency,valid_from\n"
JAN = "2026-01-01T00:00:00Z"


def table(*rows: str) -> TariffTable:
    return parse_tariffs(HEADER + "".join(row + "\n" for row in rows))


def rate(tariffs: TariffTable, talk: str | None, *, to: str = "+74951234567", line: str = "operator",
         direction: str = "outbound", line_number: str | None = None, at: str = "2026-06-01T12:00:00Z"):
    return rate_call(tariffs, line=line, direction=direction, to=to, line_number=line_number,
                     started_at_us=parse_ts_us(at), talk_s=None if talk is None else Decimal(talk))


PER_MINUTE = table(f"operator,outbound,7,Russia,1.00,0.00,60,0,RUB,{JAN}")
PER_SECOND_MIN_60 = table(f"operator,outbound,7,Russia,1.00,0.00,1,60,RUB,{JAN}")


@pytest.mark.parametrize(("talk", "billed"), [
    ("0.000", 0), ("0.001", 60), ("59.999", 60), ("60.000", 60), ("60.001", 120), ("119.999", 120),
])
def test_increment_60_rounds_talk_up(talk: str, billed: int) -> None:
    assert rate(PER_MINUTE, talk).billed_s == billed


@pytest.mark.parametrize(("talk", "billed"), [
    ("0.000", 0), ("0.001", 60), ("59.999", 60), ("60.000", 60), ("60.001", 61), ("61.000", 61),
])
def test_increment_1_with_minimum_60(talk: str, billed: int) -> None:
    assert rate(PER_SECOND_MIN_60, talk).billed_s == billed


def test_talk_rounding_through_microsecond_timestamps() -> None:
    # 59.9994 s talk -> 59.999 (half-up at the ms) -> t = 60; 59.9995 s -> 60.000 -> 60;
    # 60.0005 s -> 60.001 -> 61 s -> 120 billed at increment 60
    for talk_us, billed in ((59_999_400, 60), (59_999_500, 60), (60_000_500, 120)):
        c = build_cdr([ev("call.started", "s", 0), ev("call.answered", "a", 1),
                       ev("call.ended", "e", at_us=ev("call.answered", "a", 1).ts_us + talk_us)], PER_MINUTE)
        assert c.billed_s == billed


def test_cost_is_connect_fee_plus_rate_half_up_to_cents() -> None:
    tariffs = table(f"operator,outbound,7,Russia,0.30,0.00,1,0,RUB,{JAN}",
                    f"operator,outbound,8,Fee,0.25,0.50,1,0,RUB,{JAN}")
    # 0.30 * 1 / 60 = 0.005 exactly: half-up gives 0.01 (a float would not)
    assert rate(tariffs, "1.000").cost == Decimal("0.01")
    assert rate(tariffs, "0.500", to="+8123").cost == Decimal("0.50")  # 0.50 + 0.0041(6)
    assert rate(tariffs, "61.000", to="+8123").cost == Decimal("0.75")  # 0.50 + 0.25416(6)
    assert str(rate(tariffs, "0.000").cost) == "0.00"


def test_unanswered_call_with_connect_fee_costs_zero() -> None:
    tariffs = table(f"operator,outbound,7,Russia,2.00,5.00,60,60,RUB,{JAN}")
    assert rate(tariffs, "0.000") == ("Russia", Decimal("2.00"), 0, Decimal("0.00"), "RUB", False)


def test_longest_prefix_wins_even_over_a_newer_shorter_one() -> None:
    tariffs = table(f"operator,outbound,7,Russia,1.00,0,1,0,RUB,{JAN}",
                    "operator,outbound,7,Russia new,1.20,0,1,0,RUB,2026-05-01T00:00:00Z",
                    f"operator,outbound,7495,Moscow,0.80,0,1,0,RUB,{JAN}")
    assert rate(tariffs, "60").region == "Moscow"
    assert rate(tariffs, "60", to="+73432000000").region == "Russia new"


def test_equal_prefixes_take_the_latest_valid_from_not_after_the_start() -> None:
    tariffs = table(f"operator,outbound,7495,Moscow old,1.00,0,1,0,RUB,{JAN}",
                    "operator,outbound,7495,Moscow new,2.00,0,1,0,RUB,2026-03-01T00:00:00Z",
                    "operator,outbound,7495,Moscow future,3.00,0,1,0,RUB,2027-01-01T00:00:00Z")
    assert rate(tariffs, "60", at="2026-02-15T00:00:00Z").region == "Moscow old"
    assert rate(tariffs, "60", at="2026-04-01T00:00:00Z").region == "Moscow new"
    assert rate(tariffs, "60", at="2025-12-31T23:59:59.999999Z").region is None


def test_a_not_yet_valid_longer_prefix_falls_back_to_a_shorter_one() -> None:
    tariffs = table(f"operator,outbound,7,Russia,1.00,0,1,0,RUB,{JAN}",
                    "operator,outbound,7495,Moscow,0.80,0,1,0,RUB,2026-09-01T00:00:00Z")
    assert rate(tariffs, "60", at="2026-08-31T23:59:59Z").region == "Russia"


def test_tariff_change_in_the_middle_of_a_day() -> None:
    tariffs = table(f"operator,outbound,79,Mobile,2.00,0,1,0,RUB,{JAN}",
                    "operator,outbound,79,Mobile,3.00,0,1,0,RUB,2026-07-15T13:30:00Z")
    before = rate(tariffs, "60", to="+79161234567", at="2026-07-15T13:29:59.999999Z")
    after = rate(tariffs, "60", to="+79161234567", at="2026-07-15T13:30:00Z")
    assert (before.rate_per_min, before.cost) == (Decimal("2.00"), Decimal("2.00"))
    assert (after.rate_per_min, after.cost) == (Decimal("3.00"), Decimal("3.00"))
    # the start decides, not the end: a call across the change keeps the old rate
    c = build_cdr([ev("call.started", "s", at_us=parse_ts_us("2026-07-15T13:29:00Z"), to="+79161234567"),
                   ev("call.answered", "a", at_us=parse_ts_us("2026-07-15T13:29:30Z")),
                   ev("call.ended", "e", at_us=parse_ts_us("2026-07-15T13:31:30Z"))], tariffs)
    assert (c.rate_per_min, c.billed_s, c.cost) == (Decimal("2.00"), 120, Decimal("4.00"))


@pytest.mark.parametrize(("line", "direction"), [("internal", "internal"), ("internal", "outbound"),
                                                 ("operator", "internal")])
def test_internal_calls_are_never_looked_up(line: str, direction: str) -> None:
    tariffs = table(f"operator,outbound,,Anything,9.00,1.00,1,0,RUB,{JAN}")
    assert rate(tariffs, "600", line=line, direction=direction) == (
        "internal", None, 0, Decimal("0.00"), None, False)


def test_unknown_prefix_is_unrated_only_when_talked() -> None:
    assert rate(PER_MINUTE, "12.000", to="+4930123456") == (None, None, 0, Decimal("0.00"), None, True)
    assert rate(PER_MINUTE, "0.000", to="+4930123456").unrated is False
    assert rate(PER_MINUTE, None, to="+4930123456").unrated is False
    c = build_cdr([ev("call.started", "s", 0, to="+4930123456"), ev("call.answered", "a", 1),
                   ev("call.ended", "e", 2)], PER_MINUTE)
    assert c.unrated
    assert b'"region":null,"rate_per_min":null,"billed_s":0,"cost":"0.00","currency":null' in cdr_to_json(c, 1)


def test_a_number_without_digits_matches_no_row_even_an_empty_prefix() -> None:
    tariffs = table(f"sip,outbound,,SIP,0.00,0.00,1,0,RUB,{JAN}", f"sip,inbound,,SIP,0.00,0.00,1,0,RUB,{JAN}")
    assert rate(tariffs, "5", line="sip", to="+12125550100").region == "SIP"
    assert rate(tariffs, "5", line="sip", to="user:u7").unrated is True  # a user ref is no number
    assert rate(tariffs, "5", line="sip", to="user:123").unrated is True
    assert rate(tariffs, "5", line="sip", direction="inbound", line_number="office").unrated is True
    assert rate(tariffs, "5", line="sip", direction="inbound", line_number="reg12345").region == "SIP"


def test_inbound_rates_line_number_not_to() -> None:
    tariffs = table(f"rented,inbound,7495,Moscow number,0.40,0,1,0,RUB,{JAN}",
                    f"rented,inbound,49,German number,0.90,0,1,0,RUB,{JAN}")
    r = rate(tariffs, "30", line="rented", direction="inbound", to="+4915112345678", line_number="+74951234567")
    assert (r.region, r.cost) == ("Moscow number", Decimal("0.20"))
    assert rate(tariffs, "30", line="rented", direction="inbound", to="+74951234567").unrated is True


def test_line_and_direction_must_match() -> None:
    tariffs = table(f"rented,outbound,7,Russia,1.00,0,1,0,RUB,{JAN}")
    assert rate(tariffs, "30", line="operator").region is None
    assert rate(tariffs, "30", line="rented", direction="inbound", line_number="+74951234567").region is None
    assert rate(tariffs, "30", line="rented").region == "Russia"


def test_rate_per_min_keeps_the_csv_spelling_in_the_cdr() -> None:
    tariffs = table(f"operator,outbound,7,Russia,1.50,0.30,60,0,RUB,{JAN}")
    c = build_cdr([ev("call.started", "s", 0), ev("call.answered", "a", 0), ev("call.ended", "e", 1)], tariffs)
    assert b'"rate_per_min":"1.50","billed_s":60,"cost":"1.80"' in cdr_to_json(c, 1)


def test_digits_only() -> None:
    assert digits_only("+7 (495) 123-45-67") == "74951234567"
    assert (digits_only("user:abc"), digits_only(None), digits_only("")) == ("", "", "")
    assert digits_only("+٧٤٩٥") == ""  # only ASCII digits count


def test_table_object_refuses_duplicate_rows() -> None:
    row = TariffRow("operator", "outbound", "7", "Russia", Decimal(1), Decimal(0), 1, 0, "RUB", 0)
    with pytest.raises(TariffError, match="duplicate"):
        TariffTable([row, row])
    assert len(TariffTable([row])) == 1
