"""The dashboard's own periods in a zone, at month ends and DST changes, against each call's own
local day (zoneinfo), over a real warehouse: rollup files, deltas over them, and a call moved.

Europe/Berlin and America/New_York change their clocks on different Sundays (29 Mar / 25 Oct
and 8 Mar / 1 Nov 2026); Moscow has no DST; Kolkata's offset (+05:30) is not whole hours, so
its days come from the calls, the others' from the hourly rollup.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from dashboards import controls
from streams.domain.cdr_json import cdr_to_json
from tests.integration.sink_data import Feed
from tests.unit.warehouse_samples import CDR
from warehouse import compaction, queries
from warehouse import dashboard_queries as dq
from warehouse.filters import utc_start
from warehouse.reader import Reader
from warehouse.sources import aggregate_source, recordings_source, user_spend_source
from warehouse.writer import Writer

pytestmark = pytest.mark.integration

LINES = ("rented", "operator", "sip")
PORTALS = ("p-ny", "p-berlin", "p-msk")
SPANS = ((datetime(2026, 2, 26, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC)),
         (datetime(2026, 10, 22, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC)))
# Delivered after the compaction, as deltas: a new version of a stored call, moved across
# a local midnight (an hour later, the same UTC day) with a new cost, and a call that is only
# a delta.
MOVED = ""
FRESH = "c-fresh"


def _calls() -> dict[str, dict]:
    """call id -> (start, line, portal, status, cost): every 37 minutes through both spans."""
    calls, n = {}, 0
    for first, last in SPANS:
        at = first + timedelta(minutes=7)
        while at < last:
            calls[f"c-{n:05d}"] = {"start": at, "line": LINES[n % 3], "portal": PORTALS[n % 3],
                                   "status": "answered" if n % 4 else "missed",
                                   "cost": Decimal("0.00") if n % 13 == 0 else Decimal(n % 23) + Decimal("0.25"),
                                   "user": None if n % 11 == 0 else f"u-{n % 5}",
                                   "rec": 0 if n % 5 == 0 else 1000 + 100 * (n % 17)}
            at += timedelta(minutes=37)
            n += 1
    return calls


def _json(call_id: str, call: dict, version: int = 1) -> bytes:
    start = int(call["start"].timestamp() * 1_000_000)
    answered = call["status"] == "answered"
    rec = call.get("rec", 1000)
    return cdr_to_json(CDR._replace(
        call_id=call_id, portal_id=call["portal"], line=call["line"], status=call["status"], cost=call["cost"],
        user_id=call.get("user", "u-1"), recording_bytes=rec,
        recording_urls=(f"https://r.example/{call_id}.mp3",) if rec else (),
        recording_s=Decimal("60.333") if rec else Decimal("0.000"),
        started_at_us=start, answered_at_us=start + 5_000_000 if answered else None,
        talk_s=Decimal("60.333") if answered else Decimal("0.000"), ended_at_us=start + 65_333_000), version)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    root = tmp_path_factory.mktemp("zones") / "warehouse"
    calls = _calls()
    global MOVED  # a call at 23:xx on 28 Mar in Berlin (22:xx UTC), moved to 00:xx on the 29th
    MOVED = next(cid for cid, c in calls.items() if c["start"].strftime("%Y-%m-%dT%H") == "2026-03-28T22")
    with Writer(root) as writer:
        feed = Feed(writer)
        feed.send("cdrs", *[_json(cid, c) for cid, c in calls.items()])
        compaction.compact_all(writer)  # base files with their rollups
        calls[MOVED] = dict(calls[MOVED], start=calls[MOVED]["start"] + timedelta(hours=1), cost=Decimal("100.00"))
        calls[FRESH] = {"start": datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "line": "sip",
                        "portal": "p-berlin", "status": "answered", "cost": Decimal("7.00"), "user": "u-1",
                        "rec": 4321}
        feed.send("cdrs", _json(MOVED, calls[MOVED], 2), _json(FRESH, calls[FRESH]))
    return root, calls


def _local(call: dict, zone: str, hourly: bool = False) -> date | datetime:
    moment = call["start"].astimezone(ZoneInfo(zone))
    return moment.replace(minute=0, second=0, microsecond=0, tzinfo=None) if hourly else moment.date()


def _in(call: dict, flt) -> bool:
    in_range = utc_start(flt.start) <= call["start"] < utc_start(flt.end)
    return in_range and (not flt.portals or call["portal"] in flt.portals)


def _expected(calls: dict, flt) -> tuple[Counter, dict]:
    """(calls per local day or hour, cost per (day, line)) of the calls in ``flt``'s range, by zoneinfo."""
    counts, cost = Counter(), defaultdict(Decimal)
    for call in calls.values():
        if _in(call, flt):
            key = _local(call, flt.zone, flt.hourly)
            counts[key] += 1
            cost[(key, call["line"])] += call["cost"]
    return counts, dict(cost)


def _employees(calls: dict, flt) -> tuple[dict, dict]:
    """Paid calls of employees in ``flt``: (user, portal) -> (calls, cost), and
    (day or hour, "user · portal") -> cost."""
    totals, daily = defaultdict(lambda: (0, Decimal(0))), defaultdict(Decimal)
    for call in calls.values():
        if _in(call, flt) and call["user"] is not None and call["cost"] > 0:
            n, cost = totals[(call["user"], call["portal"])]
            totals[(call["user"], call["portal"])] = (n + 1, cost + call["cost"])
            daily[(_local(call, flt.zone, flt.hourly), f"{call['user']} · {call['portal']}")] += call["cost"]
    return dict(totals), dict(daily)


def _check_employees(reader: Reader, calls: dict, flt) -> None:
    """The Spend page's employees (top list and their days) against each call's own local day."""
    totals, daily = _employees(calls, flt)
    top = dq.top_users_by_cost(reader, flt, top=100)
    assert {(u, p): (int(n), c) for u, p, n, c in zip(top["user_id"], top["portal_id"], top["calls"], top["cost"])} \
        == totals
    assert all(isinstance(c, Decimal) for c in top["cost"])
    days = dq.employee_spend_daily(reader, flt, top=100)
    assert {(_plain(d), k): c for d, k, c in zip(days["day"], days["key"], days["cost"]) if c} == daily


def _key(value):
    return None if pd.isna(value) else value


def _recordings(calls: dict, flt) -> tuple[dict, dict]:
    """Recorded calls per user (None: of no user) in ``flt``: user -> (recordings, bytes); and (day or
    hour, user) -> (bytes, cumulative bytes: every recording of the user up to that day's end, before
    the range too)."""
    totals, daily = defaultdict(lambda: (0, 0)), defaultdict(int)
    for call in calls.values():
        if _in(call, flt) and call["rec"] > 0:
            n, size = totals[call["user"]]
            totals[call["user"]] = (n + 1, size + call["rec"])
            daily[(_local(call, flt.zone, flt.hourly), call["user"])] += call["rec"]
    portals = lambda c: not flt.portals or c["portal"] in flt.portals  # noqa: E731 (a one-line predicate)
    cumulative = {(day, user): (size, sum(c["rec"] for c in calls.values() if c["user"] == user and portals(c)
                                          and _local(c, flt.zone, flt.hourly) <= day))
                  for (day, user), size in daily.items()}
    return dict(totals), cumulative


def _check_recordings(reader: Reader, calls: dict, flt) -> None:
    """The Recordings page's employees (totals, and bytes per day with the storage at each day's
    end) against each call's own local day."""
    totals, _ = _recordings(calls, flt)
    top = dq.recording_totals_by(reader, "user", flt, top=100)
    assert {_key(u): (int(n), int(b)) for u, n, b in zip(top["key"], top["recordings"], top["bytes"])} == totals
    by_day = flt.replace(hourly=False)  # as the page asks: days, even for "today"
    days = queries.recording_bytes_by(reader, "user", by_day, top=100)
    assert {(_plain(d), _key(k)): (int(b), int(c)) for d, k, b, c in
            zip(days["day"], days["key"], days["bytes"], days["cumulative_bytes"])} == \
        {k: v for k, v in _recordings(calls, by_day)[1].items() if k[1] is not None}  # a series per employee


def _series(frame, column: str = "calls") -> Counter:
    return Counter({_plain(day): int(n) for day, n in zip(frame["day"], frame[column]) if n})


def _plain(day) -> date | datetime:
    if hasattr(day, "to_pydatetime"):
        day = day.to_pydatetime()
    return day if isinstance(day, date) and not isinstance(day, datetime) else day.replace(tzinfo=None)


def _check(reader: Reader, calls: dict, flt) -> None:
    counts, cost = _expected(calls, flt)
    assert _series(dq.daily_kpis(reader, flt)) == counts
    assert queries.call_count(reader, flt) == sum(counts.values())
    spend = dq.spend_daily_by(reader, "line", flt)
    assert {(_plain(d), k): c for d, k, c in zip(spend["day"], spend["key"], spend["cost"]) if c} == \
        {k: v for k, v in cost.items() if v}
    both = dq.spend_breakdown(reader, flt)
    by_line = both[(both["set"] == "day_line") & both["day"].notna()]
    assert {(_plain(d), k): c for d, k, c in zip(by_line["day"], by_line["key"], by_line["cost"]) if c} == \
        {k: v for k, v in cost.items() if v}
    _check_employees(reader, calls, flt)
    _check_recordings(reader, calls, flt)


HOURLY = ("cdrs_hourly", "user_spend_hourly", "recordings_hourly")
ZONES = ("Europe/Berlin", "America/New_York", "Europe/Moscow", "Asia/Kolkata", "UTC")


@pytest.mark.parametrize("zone", ZONES)
def test_periods_count_each_calls_own_local_day(warehouse, zone):
    """This month at a month's end, the last 7 days over a DST change and a month end, 30 days."""
    root, calls = warehouse
    with Reader(root) as reader:
        for today, period in ((date(2026, 3, 31), "month"), (date(2026, 11, 2), "7d"),
                              (date(2026, 11, 3), "30d")):
            flt = controls.call_filter({"period": period}, today, zone)
            _check(reader, calls, flt)
            table = aggregate_source(flt, daily=True).table
            employees = user_spend_source(flt, daily=True).table
            recorded = recordings_source(flt, daily=True).table
            if zone == "UTC":
                assert (table, employees, recorded) == ("cdrs_daily", "user_spend_daily", "recordings_daily")
            elif zone == "Asia/Kolkata":  # midnight at hh:30 UTC: only the calls know
                assert "FROM cdrs" in table and "cdrs_hourly" not in table
                assert "FROM cdrs" in employees and "user_spend" not in employees
                assert "FROM cdrs" in recorded and "recordings_" not in recorded
            else:
                assert "cdrs_hourly" in table and "user_spend_hourly" in employees
                assert "recordings_hourly" in recorded


@pytest.mark.parametrize("zone, day", [("Europe/Berlin", date(2026, 3, 29)), ("Europe/Berlin", date(2026, 10, 25)),
                                       ("America/New_York", date(2026, 3, 8)), ("America/New_York", date(2026, 11, 1)),
                                       ("America/New_York", date(2026, 10, 31))])
def test_a_day_of_dst_change_or_month_end_by_the_hour(warehouse, zone, day):
    root, calls = warehouse
    flt = controls.call_filter({"period": "today"}, day, zone)
    assert flt.hourly
    hours = (utc_start(flt.end) - utc_start(flt.start)) / timedelta(hours=1)
    assert hours == {date(2026, 3, 29): 23, date(2026, 3, 8): 23, date(2026, 10, 25): 25,
                     date(2026, 11, 1): 25}.get(day, 24)
    with Reader(root) as reader:
        _check(reader, calls, flt)
        scoped = flt.replace(portals=("p-berlin",), scope=("p-berlin", "p-ny"))
        _check(reader, calls, scoped)
    assert "cdrs_hourly" in aggregate_source(flt, daily=True).table
    assert "user_spend_hourly" in user_spend_source(flt, daily=True).table
    assert "recordings_hourly" in recordings_source(flt, daily=True).table


def test_the_moved_call_is_counted_once_on_its_new_local_day(warehouse):
    root, calls = warehouse
    flt = controls.call_filter({"period": "month"}, date(2026, 3, 31), "Europe/Berlin")
    with Reader(root) as reader:
        spend = dq.spend_daily_by(reader, "line", flt)
        assert queries.call_count(reader, flt.replace(start=None, end=None)) == len(calls)
    assert _local(calls[MOVED], "Europe/Berlin") == date(2026, 3, 29)
    by_day = defaultdict(Decimal)
    for day, cost in zip(spend["day"], spend["cost"]):
        by_day[_plain(day)] += cost
    for day in (date(2026, 3, 28), date(2026, 3, 29)):  # the old version is gone from the 28th
        assert by_day[day] == sum(c["cost"] for c in calls.values() if _local(c, "Europe/Berlin") == day)


def test_a_warehouse_written_before_the_hourly_rollups_gets_them_from_the_compactor(tmp_path):
    """Its partitions are read from the calls meanwhile (same figures); the sink's compactor
    writes the missing files (``cdrs_hourly``, ``user_spend_hourly``, ``recordings_hourly``) once
    at start."""
    import time

    from warehouse import quarantine
    from warehouse.compaction import CompactionPolicy, Compactor

    root = tmp_path / "warehouse"
    calls = dict(list(_calls().items())[:300])
    flt = controls.call_filter({"period": "month"}, date(2026, 3, 31), "America/New_York")
    with Writer(root) as writer:
        Feed(writer).send("cdrs", *[_json(cid, c) for cid, c in calls.items()])
        compaction.compact_all(writer)
        hourly = [f.path for t in HOURLY for f in writer.manifest.table_files(t)]
        writer.publish(remove=hourly)  # as an older version left it
        assert {t for t, _ in quarantine.missing_derived(writer.manifest)} == set(HOURLY)
        with Reader(root) as reader:
            _check(reader, calls, flt)
        compactor = Compactor(writer, CompactionPolicy(interval_s=0.05))
        compactor.start()
        try:
            deadline = time.monotonic() + 60
            while quarantine.missing_derived(writer.manifest):
                assert time.monotonic() < deadline, "the compactor wrote no hourly rollup"
                time.sleep(0.05)
        finally:
            compactor.stop()
            compactor.join(timeout=30)
        assert sum(len(writer.manifest.table_files(t)) for t in HOURLY) == len(hourly)
    with Reader(root) as reader:
        _check(reader, calls, flt)
