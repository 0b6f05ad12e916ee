"""The threshold rules' queries over a real warehouse (DuckDB files written by the sink's Writer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from common.config import Settings
from notify.evaluator import evaluate
from tests.integration.dashboard_support import build_warehouse
from warehouse import threshold_queries as tq
from warehouse.reader import Reader

pytestmark = pytest.mark.integration


def test_the_rules_run_over_a_real_warehouse_and_agree_with_its_rows(tmp_path):
    root = tmp_path / "warehouse"
    built = build_warehouse(root, calls=400, portals=4, days_ago=0)
    start = datetime.fromtimestamp(built["start_us"] / 1e6, UTC)
    with Reader(root) as reader:
        hours = [(start + timedelta(hours=h), start + timedelta(hours=h + 1)) for h in range(24)]
        spend = tq.hourly_spend(reader, hours)
        assert spend and all(isinstance(cost, Decimal) for *_, cost in spend)
        total = reader.read(lambda con: con.execute(
            "SELECT sum(cost) FROM cdrs WHERE currency IS NOT NULL AND started_at >= ? AND started_at < ?",
            [hours[0][0], hours[-1][1]]).fetchone()[0])
        assert sum(cost for *_, cost in spend) == total
        answers = tq.hourly_answers(reader, start, start + timedelta(days=1))
        assert answers and all(answered <= calls for _, _, calls, answered in answers)
        (day, stored), = tq.recording_storage_daily(reader)[-1:]
        assert stored > 0
        settings = Settings.from_env({"CALLSTREAM_WAREHOUSE": str(root), "CALLSTREAM_SPEND_SPIKE_FLOOR": "0",
                                      "CALLSTREAM_SPEND_SPIKE_K": "0", "CALLSTREAM_ASR_MIN": "1",
                                      "CALLSTREAM_ASR_MIN_CALLS": "1",
                                      "CALLSTREAM_RECORDING_QUOTA_BYTES": str(stored)})
        busiest = max(spend, key=lambda row: row[3])[2]
        alerts = evaluate(reader, settings, busiest + timedelta(minutes=30))
        kinds = {a["type"] for a in alerts}
        assert {"spend_spike", "recording_storage_80", "recording_storage_90", "recording_storage_100"} <= kinds
        assert all(a["alert_id"].startswith(a["type"] + ":") for a in alerts)
        bypass = reader.read(lambda con: con.execute(
            "SELECT portal_id, min(ts), max(ts), count(*) FROM alerts WHERE type = 'controller_bypassed' "
            "AND state IS DISTINCT FROM 'retracted' GROUP BY 1 ORDER BY 4 DESC LIMIT 1").fetchone())
        assert tq.bypassed_calls(reader, bypass[0], bypass[1], bypass[2]) == bypass[3]
