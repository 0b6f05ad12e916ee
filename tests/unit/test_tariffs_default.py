"""The packaged default tariff table loads and rates the regions it promises."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streams.domain.rating import rate_call
from streams.domain.timefmt import parse_ts_us
from tests.unit.call_samples import DEFAULT_CSV, TARIFFS

pytestmark = pytest.mark.unit

AFTER_ALL_CHANGES = "2026-11-25T10:00:00Z"


def region(number: str, *, line: str = "operator", direction: str = "outbound", at: str = AFTER_ALL_CHANGES):
    row = TARIFFS.lookup(line, direction, number.lstrip("+"), parse_ts_us(at))
    return None if row is None else row.region


@pytest.mark.parametrize(("number", "expected"), [
    ("+74951234567", "Moscow landline"), ("+74991234567", "Moscow landline"),
    ("+78121234567", "St Petersburg landline"), ("+79161234567", "Russia mobile"),
    ("+73432123456", "Russia landline"), ("+78001234567", "Russia toll-free 8-800"),
    ("+77011234567", "Kazakhstan"), ("+77272123456", "Kazakhstan"), ("+76123456789", "Kazakhstan"),
    ("+375291234567", "Belarus"), ("+380441234567", "Ukraine"), ("+998901234567", "Uzbekistan"),
    ("+37410123456", "Armenia"), ("+994121234567", "Azerbaijan"), ("+996312123456", "Kyrgyzstan"),
    ("+992372123456", "Tajikistan"), ("+37322123456", "Moldova"), ("+995322123456", "Georgia"),
    ("+493012345678", "Germany landline"), ("+4915112345678", "Germany mobile"),
    ("+33142123456", "France landline"), ("+33612345678", "France mobile"),
    ("+442071234567", "United Kingdom landline"), ("+447911123456", "United Kingdom mobile"),
    ("+390612345678", "Italy landline"), ("+34911234567", "Spain landline"), ("+48221234567", "Poland"),
    ("+12125550100", "USA/Canada"), ("+14165550100", "USA/Canada"),
])
def test_outbound_regions_on_operator_and_rented_lines(number: str, expected: str) -> None:
    assert region(number) == expected
    assert region(number, line="rented") == expected


def test_kazakhstan_inside_plus_7_beats_russia() -> None:
    kz = rate_call(TARIFFS, line="operator", direction="outbound", to="+77011234567", line_number=None,
                   started_at_us=parse_ts_us(AFTER_ALL_CHANGES), talk_s=Decimal("61.000"))
    assert (kz.region, kz.billed_s, kz.currency) == ("Kazakhstan", 120, "RUB")


def test_mid_year_change_of_russian_mobile_rates() -> None:
    def mobile_rate(at: str) -> Decimal:
        return TARIFFS.lookup("operator", "outbound", "79161234567", parse_ts_us(at)).rate_per_min

    before, after = mobile_rate("2025-06-30T23:59:59.999999Z"), mobile_rate("2025-07-01T00:00:00Z")
    assert before < after
    changes = [r for r in TARIFFS.rows if r.prefix == "79" and r.line == "operator"]
    assert len({r.valid_from_us for r in changes}) >= 2


def test_every_row_is_in_roubles_and_lines_are_as_documented() -> None:
    assert {r.currency for r in TARIFFS.rows} == {"RUB"}
    shapes = {(r.line, r.direction) for r in TARIFFS.rows}
    assert shapes == {("operator", "outbound"), ("rented", "outbound"), ("rented", "inbound"),
                      ("sip", "outbound"), ("sip", "inbound")}
    assert {r.rate_per_min for r in TARIFFS.rows if r.line == "sip"} == {Decimal("0.00")}


def test_sip_traffic_is_zero_rated() -> None:
    sip = rate_call(TARIFFS, line="sip", direction="outbound", to="+4915112345678", line_number="reg12345",
                    started_at_us=parse_ts_us(AFTER_ALL_CHANGES), talk_s=Decimal("3600.000"))
    assert (sip.region, sip.cost, sip.unrated) == ("SIP trunk (own carrier)", Decimal("0.00"), False)


def test_rented_inbound_is_free_except_toll_free_numbers() -> None:
    def inbound(line_number: str) -> tuple:
        r = rate_call(TARIFFS, line="rented", direction="inbound", to="user:u1", line_number=line_number,
                      started_at_us=parse_ts_us(AFTER_ALL_CHANGES), talk_s=Decimal("120.000"))
        return r.cost, r.unrated

    assert inbound("+74951234567") == (Decimal("0.00"), False)
    assert inbound("+78001234567")[0] > 0
    assert inbound("+18005550100")[0] > 0
    assert inbound("+33142123456") == (Decimal("0.00"), True)  # no French rented numbers


def test_operator_line_has_no_inbound_rows() -> None:
    assert region("+74951234567", direction="inbound") is None


def test_sources_are_documented_honestly() -> None:
    sources = (DEFAULT_CSV.parent / "SOURCES.md").read_text(encoding="utf-8")
    assert "not an official price list" in sources
