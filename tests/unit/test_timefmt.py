"""Contract timestamps: parsing, exact microseconds, millisecond printing."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest

from streams.domain.timefmt import format_ts_ms, parse_ts_us, seconds_between

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text, expected_us", [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T00:00:01.5Z", 1_500_000),
    ("1970-01-01T00:00:00.000001+00:00", 1),
    ("1970-01-01t00:00:00z", 0),
])
def test_parses_to_exact_microseconds(text, expected_us):
    assert parse_ts_us(text) == expected_us


@pytest.mark.parametrize("text", [
    "2026-11-25T10:15:30.1234567Z",    # 7 fraction digits
    "2026-11-25T10:15:30+01:00",       # not UTC
    "2026-11-25 10:15:30Z",            # no T
    "2026-02-30T10:15:30Z",            # no such day
    "2026-11-25T10:15:30",             # no offset
    "٢٠٢٦-11-25T10:15:30Z",            # non-ASCII digits
    "2026-11-25T24:00:00Z",
])
def test_refuses_what_the_contract_does_not_allow(text):
    assert parse_ts_us(text) is None


def test_prints_milliseconds_truncated_and_pads_early_years():
    assert format_ts_ms(parse_ts_us("2026-11-25T10:15:30.123999Z")) == "2026-11-25T10:15:30.123Z"
    assert format_ts_ms(parse_ts_us("0001-01-01T00:00:00Z")) == "0001-01-01T00:00:00.000Z"


def test_seconds_between_rounds_half_up_and_clamps_skew():
    assert seconds_between(0, 1_234_500) == Decimal("1.235")
    assert seconds_between(0, 1_234_499) == Decimal("1.234")
    assert seconds_between(5_000_000, 1_000_000) == Decimal("0.000")


def _reference_ms(ts_us: int) -> str:
    from datetime import timedelta

    from streams.domain.timefmt import EPOCH
    m = EPOCH + timedelta(microseconds=ts_us - ts_us % 1000)
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
            f"{m.microsecond // 1000:03d}Z")


def test_fast_formatting_agrees_with_datetime_arithmetic():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=3000, deadline=None)
    @given(st.integers(min_value=parse_ts_us("0001-01-01T00:00:00Z"),
                       max_value=parse_ts_us("9999-12-31T23:59:59.999999Z")))
    def check(ts_us):
        assert format_ts_ms(ts_us) == _reference_ms(ts_us)

    check()


def test_fast_seconds_between_agrees_with_decimal_division():
    from decimal import ROUND_HALF_UP

    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=3000, deadline=None)
    @given(st.integers(0, 10**13), st.integers(0, 10**13))
    def check(start, end):
        delta = end - start
        expected = Decimal("0.000") if delta <= 0 else (Decimal(delta) / Decimal(1_000_000)).quantize(
            Decimal("0.001"), rounding=ROUND_HALF_UP)
        got = seconds_between(start, end)
        assert got == expected and str(got) == str(expected)

    check()


def test_durations_do_not_depend_on_the_threads_decimal_context() -> None:
    # Another library lowering the precision must not round a CDR's durations.
    with localcontext() as ctx:
        ctx.prec = 3
        assert seconds_between(0, 98_372_123) == Decimal("98.372")
        assert str(seconds_between(0, 10**17)) == "100000000000.000"
