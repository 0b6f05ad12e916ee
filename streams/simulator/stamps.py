"""Fast wire timestamps and ids for the simulator's hot path.

The voice servers stamp events with milliseconds: ``2026-11-25T10:15:30.123Z``.
Formatting goes through a per-day cache of the date part, because
``datetime.strftime`` per event would cost more than the rest of an event.
"""

from __future__ import annotations

import random

from streams.domain.timefmt import us_to_datetime

_DAY_US = 86_400_000_000
_days: dict[int, str] = {}
_seconds: dict[int, str] = {}
# uuid4: version nibble 4, variant bits 10 (RFC 4122), the other 122 bits random.
_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID4_SET = (0x4 << 76) | (0x2 << 62)


def _day_prefix(day: int) -> str:
    prefix = _days.get(day)
    if prefix is None:
        if len(_days) > 10_000:
            _days.clear()
        moment = us_to_datetime(day * _DAY_US)
        prefix = _days[day] = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
    return prefix


def format_ts(ts_us: int) -> str:
    """RFC 3339 UTC with milliseconds (sub-millisecond digits are truncated)."""
    second, us = divmod(ts_us, 1_000_000)
    head = _seconds.get(second)
    if head is None:
        head = _second_head(second)
    return f"{head}{us // 1000:03d}Z"


def _second_head(second: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.`` of a second since the epoch, cached (events cluster in time)."""
    if len(_seconds) > 50_000:
        _seconds.clear()
    day, rest = divmod(second, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    head = _seconds[second] = f"{_day_prefix(day)}{hours:02d}:{minutes:02d}:{seconds:02d}."
    return head


def day_path(ts_us: int) -> str:
    """``YYYY/MM/DD`` of the UTC day of ``ts_us`` (the recording store's folders)."""
    return _day_prefix(ts_us // _DAY_US)[:10].replace("-", "/")


def uuid4_hex(rng: random.Random) -> str:
    """A uuid4 in 32 hex digits, drawn from ``rng`` (so a seed reproduces it)."""
    return f"{rng.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


def ms_us(seconds: float) -> int:
    """``seconds`` as microseconds, truncated to whole milliseconds (event time resolution)."""
    return int(seconds * 1000) * 1000
