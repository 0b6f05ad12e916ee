"""Threshold rules over the warehouse: pure functions of rollup rows -> alerts.

Anomalies nobody sees call by call. Each alert has a deterministic id,
``<rule>:<portal>:<window start>``, so evaluating again (or after a restart)
raises the same alert, which notify delivers once:

- ``spend_spike``: a portal's spend in an hour (per currency) above ``k`` ×
  the median of the same weekday and hour over the 4 weeks before (a week
  without calls counts as 0) and above a floor, so quiet portals page nobody;
- ``low_asr``: a portal's answer-seizure ratio (answered / finished calls)
  over a complete hour below a threshold, with at least a minimum of calls;
- ``recording_storage_80`` / ``_90`` / ``_100``: recordings reach that share
  of ``CALLSTREAM_RECORDING_QUOTA_BYTES``. The quota is the whole
  installation's, so the portal is ``_all``; the window is the UTC day on
  which the level was crossed (storage only grows: one alert per level).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

ALL_PORTALS = "_all"
LEVELS = (80, 90, 100)
WEEKS = 4


def hour_start(moment: datetime) -> datetime:
    """The UTC hour that contains ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def stamp(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds (the contract's timestamp form)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def history_hours(hour: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) of ``hour`` and of the same weekday and hour in each of the 4 weeks before."""
    return [(hour - timedelta(weeks=w), hour - timedelta(weeks=w) + timedelta(hours=1)) for w in range(WEEKS + 1)]


def _alert(rule: str, portal: str, window: datetime, ts: datetime, detail: dict[str, Any]) -> dict[str, Any]:
    return {"alert_id": f"{rule}:{portal}:{stamp(window)}", "type": rule, "portal_id": portal, "call_id": None,
            "ts": stamp(ts), "detail": {"state": "open", **detail}}


def spend_spikes(rows: Iterable[tuple[str, str, datetime, Decimal]], hour: datetime, *, k: Decimal,
                 floor: Decimal) -> list[dict[str, Any]]:
    """spend_spike alerts for ``hour`` from (portal, currency, hour start, cost) rows of it and its history."""
    hour = hour_start(hour)
    spend: dict[tuple[str, str], dict[datetime, Decimal]] = {}
    for portal, currency, start, cost in rows:
        if cost is None or currency is None:
            continue
        spend.setdefault((portal, currency), {})[hour_start(start)] = Decimal(cost)
    raised: dict[str, dict[str, Any]] = {}
    for (portal, currency), by_hour in sorted(spend.items()):
        now = by_hour.get(hour, Decimal(0))
        past = [by_hour.get(hour - timedelta(weeks=w), Decimal(0)) for w in range(1, WEEKS + 1)]
        median = Decimal(statistics.median(past))
        if now <= floor or now <= k * median:
            continue
        if portal in raised:  # one alert per portal and hour: the first currency names it
            raised[portal]["detail"]["currencies"] += 1
            continue
        raised[portal] = _alert("spend_spike", portal, hour, hour + timedelta(hours=1), {
            "window_start": stamp(hour), "window_end": stamp(hour + timedelta(hours=1)), "currency": currency,
            "spend": str(now), "median": str(median.quantize(Decimal("0.01"))), "k": str(k), "floor": str(floor),
            "currencies": 1})
    return list(raised.values())


def low_asr(rows: Iterable[tuple[str, datetime, int, int]], hour: datetime, *, threshold: float,
            min_calls: int) -> list[dict[str, Any]]:
    """low_asr alerts for the complete ``hour`` from (portal, hour start, finished, answered) rows."""
    hour = hour_start(hour)
    alerts = []
    for portal, start, calls, answered in sorted(rows):
        if hour_start(start) != hour or calls < min_calls:
            continue
        asr = answered / calls
        if asr < threshold:
            alerts.append(_alert("low_asr", portal, hour, hour + timedelta(hours=1), {
                "window_start": stamp(hour), "window_end": stamp(hour + timedelta(hours=1)), "calls": calls,
                "answered": answered, "asr": round(asr, 4), "threshold": threshold, "min_calls": min_calls}))
    return alerts


def storage_levels(daily: Iterable[tuple[date | datetime, int]], quota: int) -> list[dict[str, Any]]:
    """recording_storage_<level> alerts from (day, cumulative bytes) rows, one per level reached."""
    days = sorted((_day(day), int(total)) for day, total in daily)
    if not days or quota <= 0:
        return []
    used = days[-1][1]
    alerts = []
    for level in LEVELS:
        limit = quota * level / 100
        crossed = next((day for day, total in days if total >= limit), None)
        if crossed is None:
            continue
        alerts.append(_alert(f"recording_storage_{level}", ALL_PORTALS, crossed, crossed + timedelta(days=1), {
            "level": level, "used_bytes": used, "quota_bytes": quota, "share": round(used / quota, 4)}))
    return alerts


def _day(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)
