"""CallFilter -> SQL: values only as parameters, identifiers only from whitelists."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from warehouse.filters import ALL_CALLS, CallFilter, call_conditions, order_by, utc_start, where

pytestmark = pytest.mark.unit

EVIL = "p1'); DROP TABLE cdrs; --"


def test_no_filter_means_no_where_clause():
    assert where(ALL_CALLS) == ("", [])


def test_dates_are_utc_midnights_and_the_range_is_half_open():
    clause, params = where(CallFilter(start=date(2026, 11, 1), end=date(2026, 12, 1)))
    assert clause == "WHERE started_at >= ? AND started_at < ?"
    assert params == [datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)]


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        utc_start(datetime(2026, 11, 1))


def test_list_filters_get_one_placeholder_per_value_and_values_stay_out_of_the_sql():
    flt = CallFilter(portals=("p1", EVIL), lines=("rented",), statuses=("answered", "missed"))
    clause, params = where(flt)
    assert EVIL not in clause
    assert 'portal_id" IN (?, ?)' in clause and '"line" IN (?)' in clause and '"status" IN (?, ?)' in clause
    assert params == ["p1", EVIL, "rented", "answered", "missed"]


def test_ranges_recording_and_extra_conditions():
    flt = CallFilter(min_talk_s=Decimal("10.5"), max_cost=3, has_recording=True)
    conditions, params = call_conditions(flt)
    assert conditions == ["recording_bytes > 0", '"talk_s" >= ?', '"cost" <= ?']
    assert params == [Decimal("10.5"), Decimal(3)]
    clause, _ = where(CallFilter(has_recording=False), "status <> 'incomplete'")
    assert clause == "WHERE recording_bytes = 0 AND status <> 'incomplete'"


def test_number_search_ignores_formatting_and_looks_in_every_number_column():
    conditions, params = call_conditions(CallFilter(number="+7 (495) 123-45"))
    assert params == ["+749512345"] * 4
    assert "line_number" in conditions[0] and "shown_number" in conditions[0]
    assert call_conditions(CallFilter(number=" - ")) == ([], [])


def test_sort_columns_come_from_the_whitelist_only():
    assert order_by("talk_s", True) == 'ORDER BY "talk_s" DESC NULLS LAST, call_id DESC'
    assert order_by("from", False) == 'ORDER BY "from" ASC NULLS LAST, call_id ASC'
    with pytest.raises(ValueError, match="cannot sort"):
        order_by("started_at; DROP TABLE cdrs", True)


def test_whole_hour_offsets_of_zones_over_a_range():
    from datetime import datetime

    from warehouse.sources import whole_hour_offsets

    year = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    for zone in ("UTC", "Europe/Berlin", "America/New_York", "Europe/Moscow", "Asia/Tokyo"):
        assert whole_hour_offsets(zone, *year), zone
    for zone in ("Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Australia/Adelaide", "Australia/Lord_Howe"):
        assert not whole_hour_offsets(zone, *year), zone
    assert whole_hour_offsets("Europe/Berlin", None, None)


def test_sources_pick_the_daily_then_the_hourly_rollup_then_the_calls():
    from datetime import datetime

    from warehouse.sources import aggregate_source, recorded_count_source

    utc_days = CallFilter(start=date(2026, 11, 1), end=date(2026, 12, 1))
    moscow = CallFilter(start=datetime(2026, 10, 31, 21, tzinfo=UTC),
                        end=datetime(2026, 11, 30, 21, tzinfo=UTC), zone="Europe/Moscow")
    kolkata = CallFilter(start=datetime(2026, 10, 31, 18, 30, tzinfo=UTC),
                         end=datetime(2026, 11, 30, 18, 30, tzinfo=UTC), zone="Asia/Kolkata")
    assert aggregate_source(utc_days, daily=True).table == "cdrs_daily"
    assert aggregate_source(moscow).table == "cdrs_hourly"
    grouped = aggregate_source(moscow, daily=True)
    assert "cdrs_hourly" in grouped.table and "'Europe/Moscow'" in grouped.table
    assert grouped.params[:2] == [moscow.start, moscow.end]  # the table's parameters come first
    assert aggregate_source(moscow.replace(min_cost=1), daily=True).table.count("FROM cdrs)") == 1
    assert "cdrs_hourly" not in aggregate_source(kolkata, daily=True).table
    assert aggregate_source(kolkata).table == "cdrs"
    assert recorded_count_source(moscow.replace(has_recording=True)).table == "cdrs_hourly"
    # A forged range of thousands of years is not mapped hour by hour.
    huge = moscow.replace(start=date(1970, 1, 1), end=date(9998, 1, 1))
    assert "range(" not in aggregate_source(huge, daily=True).table


# November 2026 as whole UTC days, as New York's days (whole UTC hours; EDT until 1 Nov, EST
# after) and as Kolkata's (half-hour midnights: no hourly rollup knows them).
NOVEMBER_UTC = CallFilter(start=date(2026, 11, 1), end=date(2026, 12, 1))
NOVEMBER_NEW_YORK = CallFilter(start=datetime(2026, 11, 1, 4, tzinfo=UTC), end=datetime(2026, 12, 1, 5, tzinfo=UTC),
                               zone="America/New_York")
NOVEMBER_KOLKATA = CallFilter(start=datetime(2026, 10, 31, 18, 30, tzinfo=UTC),
                              end=datetime(2026, 11, 30, 18, 30, tzinfo=UTC), zone="Asia/Kolkata")


def test_employee_spend_reads_the_daily_then_the_hourly_rollup_then_the_calls():
    """Per-employee spend in Moscow's or New York's days sums UTC hours of its own rollup
    (issue 15: it read the calls, and the Spend page never rendered for zoned users)."""
    from warehouse.sources import user_spend_source

    utc_days, new_york, kolkata = NOVEMBER_UTC, NOVEMBER_NEW_YORK, NOVEMBER_KOLKATA
    assert user_spend_source(utc_days).table == "user_spend_daily"
    assert user_spend_source(utc_days, daily=True).table == "user_spend_daily"
    assert user_spend_source(new_york).table == "user_spend_hourly"
    grouped = user_spend_source(new_york.replace(portals=("p-1",), users=("u-1",)), daily=True)
    assert "user_spend_hourly" in grouped.table and "'America/New_York'" in grouped.table
    assert grouped.params == [new_york.start, new_york.end, new_york.start, new_york.end, "p-1", "u-1"]
    assert "user_spend_hourly" in user_spend_source(new_york.replace(hourly=True), daily=True).table
    # What no rollup of employees knows: lines, bounds on cost, half-hour midnights.
    assert "user_spend" not in user_spend_source(new_york.replace(lines=("sip",)), daily=True).table
    assert "user_spend" not in user_spend_source(new_york.replace(min_cost=1), daily=True).table
    assert "user_spend" not in user_spend_source(kolkata, daily=True).table
    assert user_spend_source(kolkata).table == "cdrs"


def test_recordings_per_employee_read_the_daily_then_the_hourly_rollup_then_the_calls():
    """Recording storage per employee in Moscow's or New York's days sums UTC hours of
    ``recordings_hourly`` (issue 15: the Recordings page of a zoned user read the calls)."""
    from warehouse.sources import recordings_source

    utc_days, new_york, kolkata = NOVEMBER_UTC, NOVEMBER_NEW_YORK, NOVEMBER_KOLKATA
    assert recordings_source(utc_days).table == "recordings_daily"
    assert recordings_source(utc_days, daily=True).table == "recordings_daily"
    assert recordings_source(new_york).table == "recordings_hourly"
    # The cumulative storage before a range: an open start, a whole-hour end.
    assert recordings_source(new_york.replace(start=None, end=new_york.start)).table == "recordings_hourly"
    grouped = recordings_source(new_york.replace(portals=("p-1",), lines=("sip",), scope=("p-1", "p-2")),
                                daily=True)
    assert "recordings_hourly" in grouped.table and "'America/New_York'" in grouped.table
    assert grouped.params == [new_york.start, new_york.end, "p-1", "p-2", new_york.start, new_york.end,
                              "p-1", "sip"]
    assert "started_hour >= ?" in grouped.where and '"portal_id" IN (?, ?)' in grouped.where
    # What no recordings rollup knows: regions, bounds on talk, calls without a recording,
    # half-hour midnights.
    assert "recordings_" not in recordings_source(new_york.replace(regions=("Moscow",)), daily=True).table
    assert "recordings_" not in recordings_source(new_york.replace(min_talk_s=5), daily=True).table
    assert "recordings_" not in recordings_source(new_york.replace(has_recording=False)).table
    assert recordings_source(new_york.replace(has_recording=True)).table == "recordings_hourly"
    assert "recordings_" not in recordings_source(kolkata, daily=True).table
    assert recordings_source(kolkata).table == "cdrs"
