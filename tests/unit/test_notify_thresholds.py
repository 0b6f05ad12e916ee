"""Threshold rules on hand-made rollups; the sink stores the alerts they raise."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from notify import thresholds as th
from warehouse import duck
from warehouse.decode import RawBatch, decode_json

pytestmark = pytest.mark.unit
HOUR = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # a Thursday
K, FLOOR = Decimal("3"), Decimal("100")


def _spend(portal: str, cost: str, weeks_back: int = 0, currency: str = "RUB", hour: datetime = HOUR):
    return (portal, currency, hour - timedelta(weeks=weeks_back), Decimal(cost))


def test_spend_above_k_times_the_median_of_the_same_weekday_hour_raises_once_per_portal_and_hour():
    history = ((1, "200"), (2, "250"), (3, "300"), (4, "900"))
    rows = [_spend("busy", "1000.00"), *[_spend("busy", c, w) for w, c in history],
            _spend("steady", "700.00"), *[_spend("steady", "300", w) for w in (1, 2, 3, 4)]]
    (alert,) = th.spend_spikes(rows, HOUR + timedelta(minutes=20), k=K, floor=FLOOR)
    assert alert["alert_id"] == "spend_spike:busy:2026-12-03T10:00:00.000Z"
    assert alert["portal_id"] == "busy" and alert["call_id"] is None and alert["type"] == "spend_spike"
    assert alert["detail"]["state"] == "open" and alert["detail"]["median"] == "275.00"
    assert alert["detail"]["spend"] == "1000.00" and alert["ts"] == "2026-12-03T11:00:00.000Z"
    assert th.spend_spikes(rows, HOUR, k=K, floor=FLOOR) == [alert]  # deterministic: same id, same alert


def test_the_floor_keeps_quiet_portals_quiet_and_a_new_portal_is_judged_by_the_floor():
    quiet = [_spend("quiet", "90.00")]  # no history: median 0, but under the floor
    new = [_spend("new", "150.00")]
    assert th.spend_spikes(quiet, HOUR, k=K, floor=FLOOR) == []
    assert [a["portal_id"] for a in th.spend_spikes(new, HOUR, k=K, floor=FLOOR)] == ["new"]


def test_spend_is_compared_per_currency_and_only_other_weeks_same_hour_count():
    rows = [_spend("p", "500", currency="USD"), _spend("p", "500"), *[_spend("p", "400", w) for w in (1, 2, 3, 4)],
            ("p", "RUB", HOUR - timedelta(hours=1), Decimal("1"))]
    (alert,) = th.spend_spikes(rows, HOUR, k=K, floor=FLOOR)
    assert alert["detail"]["currency"] == "USD" and alert["detail"]["currencies"] == 1


def test_history_hours_are_the_same_weekday_and_hour():
    spans = th.history_hours(HOUR)
    assert [s for s, _ in spans] == [HOUR - timedelta(weeks=w) for w in range(5)]
    assert all(e - s == timedelta(hours=1) and s.weekday() == HOUR.weekday() for s, e in spans)


def test_low_asr_needs_the_minimum_of_calls_and_a_ratio_below_the_threshold():
    rows = [("bad", HOUR, 60, 12), ("few", HOUR, 10, 0), ("fine", HOUR, 100, 70), ("edge", HOUR, 50, 15),
            ("other-hour", HOUR - timedelta(hours=1), 100, 0)]
    alerts = th.low_asr(rows, HOUR, threshold=0.3, min_calls=50)
    assert [a["alert_id"] for a in alerts] == ["low_asr:bad:2026-12-03T10:00:00.000Z"]
    assert alerts[0]["detail"]["asr"] == 0.2 and alerts[0]["detail"]["calls"] == 60


def test_recording_storage_at_80_90_and_100_percent_of_the_quota():
    quota = 1000
    daily = [(date(2026, 12, 1), 500), (date(2026, 12, 2), 850), (date(2026, 12, 3), 920)]
    alerts = th.storage_levels(daily, quota)
    assert [a["alert_id"] for a in alerts] == ["recording_storage_80:_all:2026-12-02T00:00:00.000Z",
                                               "recording_storage_90:_all:2026-12-03T00:00:00.000Z"]
    assert alerts[1]["detail"]["used_bytes"] == 920 and alerts[1]["detail"]["share"] == 0.92
    full = th.storage_levels(daily + [(date(2026, 12, 4), 1000)], quota)
    assert [a["type"] for a in full] == ["recording_storage_80", "recording_storage_90", "recording_storage_100"]
    assert th.storage_levels(daily, 2000) == []  # a larger quota: no level reached
    assert th.storage_levels([], quota) == [] and th.storage_levels(daily, 0) == []


def test_the_sink_accepts_and_stores_every_threshold_alert():
    alerts = (th.spend_spikes([_spend("p-1", "1000")], HOUR, k=K, floor=FLOOR)
              + th.low_asr([("p-1", HOUR, 60, 1)], HOUR, threshold=0.3, min_calls=50)
              + th.storage_levels([(date(2026, 12, 1), 10**12)], 10**12)
              + th.storage_levels([(date(2026, 12, 1), 900)], 1000))
    batch = RawBatch("alerts")
    for offset, alert in enumerate(alerts):
        batch.add(0, offset, 1_795_430_130_000, alert["portal_id"].encode(), orjson.dumps(alert))
    con = duck.connect()
    try:
        rows, rejects = decode_json(con, "alerts", batch, check_keys=True)
    finally:
        con.close()
    assert rejects.num_rows == 0, rejects.to_pylist()
    assert rows.column("alert_id").to_pylist() == [a["alert_id"] for a in alerts]
    assert len(alerts) == 1 + 1 + 3 + 2
