"""CallFilter -> SQL: values only as parameters, identifiers only from whitelists."""

from __future__ import annotations

from datetime import date, datetime, timezone
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
    assert params == [datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc)]


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
