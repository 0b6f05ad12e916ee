"""warehouse.dashboard_queries against Python oracles over a small real warehouse."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.dashboard_support import build_warehouse
from warehouse import dashboard_queries as dq
from warehouse.export import export_to_file
from warehouse.filters import ALL_CALLS, CallFilter
from warehouse.reader import Reader

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    root = tmp_path_factory.mktemp("dash-queries") / "warehouse"
    build_warehouse(root)
    with Reader(root) as r:
        yield r


def _cdrs(reader: Reader) -> list[dict]:
    with reader.cursor() as con:
        return con.sql("SELECT * FROM cdrs").to_arrow_table().to_pylist()


def test_daily_kpis(reader) -> None:
    rows = _cdrs(reader)
    frame = dq.daily_kpis(reader)
    assert frame["calls"].sum() == sum(1 for r in rows if r["status"] != "incomplete" and r["started_day"])
    for day in frame.itertuples():
        mine = [r for r in rows if r["started_day"] == day.day and r["status"] != "incomplete"]
        answered = [r for r in mine if r["status"] == "answered"]
        assert (day.calls, day.answered) == (len(mine), len(answered))
        assert day.bypassed == sum(1 for r in rows if r["started_day"] == day.day and r["controller"] == "bypassed")
        if answered:
            assert day.acd_s == (sum(r["talk_s"] for r in answered) / len(answered)).quantize(Decimal("0.001"))


@pytest.mark.parametrize("dimension, column", [("region", "region"), ("line", "line"), ("direction", "direction"),
                                               ("portal", "portal_id"), ("currency", "currency")])
def test_spend_by(reader, dimension, column) -> None:
    expected: dict = defaultdict(lambda: [0, Decimal(0)])
    for r in _cdrs(reader):
        expected[(r[column], r["currency"])][0] += 1
        expected[(r[column], r["currency"])][1] += r["cost"]
    frame = dq.spend_by(reader, dimension, top=1000)
    got = {(k, c if isinstance(c, str) else None): [n, cost] for k, c, n, cost in
           zip(frame["key"], frame["currency"], frame["calls"], frame["cost"])}
    got = {(k if isinstance(k, str) else None, c): v for (k, c), v in got.items()}
    assert got == dict(expected)
    costs = list(frame["cost"])
    assert costs == sorted(costs, reverse=True)


def test_spend_by_refuses_unknown_dimensions(reader) -> None:
    with pytest.raises(ValueError, match="dimension must be one of"):
        dq.spend_by(reader, "cost; DROP TABLE cdrs")


def test_top_users_by_cost(reader) -> None:
    totals: Counter = Counter()
    for r in _cdrs(reader):
        if r["user_id"] and r["cost"] > 0:
            totals[(r["user_id"], r["portal_id"], r["currency"])] += r["cost"]
    frame = dq.top_users_by_cost(reader, top=5)
    best = sorted(totals.items(), key=lambda item: (-item[1], item[0][0], item[0][1]))[:5]
    assert list(zip(frame["user_id"], frame["portal_id"], frame["cost"])) == [(u, p, cost) for (u, p, _), cost in best]


@pytest.mark.parametrize("dimension, column", [("portal", "portal_id"), ("line", "line"), ("user", "user_id")])
def test_recording_totals_by(reader, dimension, column) -> None:
    totals: Counter = Counter()
    counts: Counter = Counter()
    for r in _cdrs(reader):
        if r["recording_bytes"] > 0:
            totals[r[column]] += r["recording_bytes"]
            counts[r[column]] += 1
    assert totals, "the test warehouse has recordings"
    frame = dq.recording_totals_by(reader, dimension, top=1000)
    assert dict(zip(frame["key"], frame["bytes"])) == dict(totals)
    assert dict(zip(frame["key"], frame["recordings"])) == dict(counts)


def test_alert_counts_and_portal_filter(reader) -> None:
    with reader.cursor() as con:
        alerts = con.sql("SELECT type, state, portal_id FROM alerts").fetchall()
    frame = dq.alert_counts(reader)
    states = (s if isinstance(s, str) else None for s in frame["state"])
    assert {(t, s): n for t, s, n in zip(frame["type"], states, frame["count"])} \
        == Counter((t, s) for t, s, _ in alerts)
    outage = dq.alert_counts(reader, portals=("p-outage-a",))
    assert list(zip(outage["type"], outage["state"], outage["count"])) == [("controller_outage", "resolved", 1)]


def test_dimension_values(reader) -> None:
    rows = _cdrs(reader)
    assert dq.dimension_values(reader, "portal") == sorted({r["portal_id"] for r in rows})
    users = sorted({r["user_id"] for r in rows if r["user_id"]})
    some = users[0][:4]
    assert dq.dimension_values(reader, "user", search=some.upper(), limit=1000) == [u for u in users if some in u]
    assert len(dq.dimension_values(reader, "user", limit=3)) == 3


def test_filtered_billing_csv_matches_the_export(reader, tmp_path: Path) -> None:
    rows = _cdrs(reader)
    portal = Counter(r["portal_id"] for r in rows).most_common(1)[0][0]
    first = min(r["started_at"] for r in rows if r["started_at"])
    start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=30)
    ours, theirs = tmp_path / "dash.csv", tmp_path / "export.csv"
    n = dq.write_billing_csv(reader, CallFilter(start=start, end=end, portals=(portal,)), ours)
    assert n == export_to_file(reader, theirs, start, end, portal) > 0
    assert ours.read_bytes() == theirs.read_bytes()


def test_billing_csv_of_a_narrow_filter(reader, tmp_path: Path) -> None:
    out = tmp_path / "answered.csv"
    n = dq.write_billing_csv(reader, ALL_CALLS.replace(statuses=("answered",), has_recording=True), out)
    lines = out.read_text().splitlines()
    assert len(lines) == n + 1 and lines[0].startswith("call_id,portal_id,started_at")
    assert all(",answered," in line for line in lines[1:])
    assert n == sum(1 for r in _cdrs(reader) if r["status"] == "answered" and r["recording_bytes"] > 0
                    and r["started_at"] is not None)


def test_spend_breakdown_agrees_with_each_single_breakdown(reader) -> None:
    frame = dq.spend_breakdown(reader)
    assert set(frame["set"]) == set(dq.SPEND_SETS)

    def as_dict(rows):
        return {(k if isinstance(k, str) else None, c if isinstance(c, str) else None): (n, b, cost)
                for k, c, n, b, cost in zip(rows["key"], rows["currency"], rows["calls"], rows["billed_s"],
                                            rows["cost"])}

    for name in ("region", "line", "direction", "currency"):
        assert as_dict(frame[frame["set"] == name]) == as_dict(dq.spend_by(reader, name, top=1000)), name
    by_day = frame[frame["set"] == "day_region"]
    from warehouse import queries

    daily = queries.spend_by_region_day_line(reader).groupby(["day", "region"], dropna=False)["cost"].sum()
    assert sum(by_day["cost"]) == sum(daily)
    assert by_day["calls"].sum() == frame[frame["set"] == "currency"]["calls"].sum()
    # The Spend page's lines and directions over time come from the same scan (issue 15).
    for name in ("line", "direction"):
        rows = frame[(frame["set"] == f"day_{name}") & frame["day"].notna()]
        single = dq.spend_daily_by(reader, name)
        assert len(single) > 0
        assert by_day_key(rows) == by_day_key(single), name


def by_day_key(rows) -> dict:
    """(day, key, currency) -> (calls, cost); a missing key or currency as None."""
    def text(value):
        return value if isinstance(value, str) else None
    return {(d, text(k), text(c)): (n, cost)
            for d, k, c, n, cost in zip(rows["day"], rows["key"], rows["currency"], rows["calls"], rows["cost"])}
