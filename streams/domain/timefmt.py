"""RFC 3339 UTC timestamps of contract v1, as exact integer microseconds.

The domain works on integer microseconds since the epoch (UTC): differences
are exact, comparisons are cheap, and nothing depends on the host time zone.
``datetime`` objects (always timezone-aware UTC) are produced at the edges.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
_MS_QUANTUM = Decimal("0.001")

# Contract: RFC 3339 in UTC, 0-6 fraction digits, "Z" or "+00:00".
_RFC3339_UTC = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?(?:[Zz]|\+00:00)\Z"
)


def parse_ts_us(text: str) -> int | None:
    """Microseconds since the epoch for a contract timestamp, or None if it is not one."""
    match = _RFC3339_UTC.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          tzinfo=timezone.utc)
    except ValueError:
        return None
    micros = int((fraction or "").ljust(6, "0")) if fraction else 0
    return (moment - EPOCH) // _US + micros


def us_to_datetime(ts_us: int) -> datetime:
    """Timezone-aware UTC datetime for integer microseconds."""
    return EPOCH + timedelta(microseconds=ts_us)


def datetime_to_us(moment: datetime) -> int:
    """Integer microseconds for an aware datetime (naive ones are refused)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: callstream only handles UTC-aware times")
    return (moment - EPOCH) // _US


def format_ts_ms(ts_us: int) -> str:
    """``2026-11-25T10:15:30.123Z``: UTC, milliseconds, truncated (not rounded)."""
    m = us_to_datetime(ts_us - ts_us % 1000)
    # By hand: strftime("%Y") does not zero-pad years before 1000 on glibc.
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
            f"{m.microsecond // 1000:03d}Z")


def seconds_between(start_us: int, end_us: int) -> Decimal:
    """``end - start`` in seconds with 3 decimals, half-up; negative skew counts as 0."""
    delta = end_us - start_us
    if delta <= 0:
        return Decimal("0.000")
    return (Decimal(delta) / Decimal(1_000_000)).quantize(_MS_QUANTUM, rounding=ROUND_HALF_UP)
