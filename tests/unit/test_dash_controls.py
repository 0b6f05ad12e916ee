"""Control values -> CallFilter, in one place; pager and sort clicks; pure page helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import pytest

from dashboards import controls
from dashboards.pages import alerts, call_view, calls, recordings, spend

pytestmark = pytest.mark.unit

TODAY = date(2026, 11, 26)


@pytest.mark.parametrize("period, start", [("today", date(2026, 11, 26)), ("7d", date(2026, 11, 20)),
                                           ("30d", date(2026, 10, 28)), ("month", date(2026, 11, 1)),
                                           ("365d", date(2025, 11, 27)), ("bogus", date(2026, 10, 28)),
                                           (None, date(2026, 10, 28))])
def test_period_bounds_end_after_today(period, start) -> None:
    assert controls.period_bounds(period, TODAY) == (start, date(2026, 11, 27))


def test_previous_period_has_the_same_length() -> None:
    assert controls.previous_period(date(2026, 11, 20), date(2026, 11, 27)) == (date(2026, 11, 13), date(2026, 11, 20))


def test_call_filter_from_every_control() -> None:
    flt = controls.call_filter({
        "start": "2026-11-01", "end": "2026-11-30T00:00:00", "portals": ["p-2", "p-1", "p-1"], "users": "u-1",
        "lines": ["operator"], "directions": ["outbound"], "statuses": ["answered"], "regions": ["Europe"],
        "controllers": ["bypassed"], "recording": "yes", "min_talk_s": 10, "max_talk_s": "60.5",
        "min_cost": "0.5", "max_cost": None, "number": " +7 495 ", "unknown": "ignored"}, TODAY)
    assert (flt.start, flt.end) == (date(2026, 11, 1), date(2026, 12, 1))  # the last day is included
    assert flt.portals == ("p-1", "p-2") and flt.users == ("u-1",)
    assert flt.has_recording is True and flt.number == "+7 495"
    assert (flt.min_talk_s, flt.max_talk_s, flt.min_cost, flt.max_cost) == (Decimal(10), Decimal("60.5"),
                                                                            Decimal("0.5"), None)
    hash(flt)  # cached per filter: it must be hashable


def test_call_filter_defaults_to_the_period() -> None:
    flt = controls.call_filter({"period": "7d", "recording": "no"}, TODAY)
    assert (flt.start, flt.end, flt.has_recording) == (date(2026, 11, 20), date(2026, 11, 27), False)
    assert controls.call_filter({}, TODAY).start == date(2026, 10, 28)


@pytest.mark.parametrize("values, message", [
    ({"start": "2026-11-30", "end": "2026-11-01"}, "after the last day"),
    ({"start": "yesterday", "end": "2026-11-01"}, "start: not a date"),
    ({"min_cost": "lots"}, "min_cost: not a number"), ({"max_talk_s": -1}, "must be a number >= 0"),
    ({"min_talk_s": "NaN"}, "must be a number >= 0"), ({"portals": [1, 2]}, "portals: expected a list"),
    ({"number": "1" * 65}, "at most 64"), ({"number": 5}, "number: expected text"),
    ({"period": ["30d"]}, "period: one of"), ({"period": "decade"}, "period: one of"),
    ({"recording": ["yes"]}, "recording: expected yes, no"), ({"start": 20261101, "end": "2026-11-30"}, "not a date"),
    ({"start": "9999-12-30", "end": "9999-12-31"}, "between 1970-01-01 and 9998-12-31"),
    ({"min_cost": "1e400"}, "<= 1,000,000,000,000"), ({"max_cost": True}, "not a number"),
    ({"max_cost": {"a": 1}}, "not a number"), ({"portals": ["p"] * 1001}, "at most 1000 names"),
    ({"users": ["u" * 201]}, "of at most 200 characters")])
def test_bad_control_values_are_one_clear_error(values, message) -> None:
    with pytest.raises(controls.FilterError, match=message):
        controls.call_filter(values, TODAY)


@pytest.mark.parametrize("value, page", [(3, 3), (3.0, 3), ("3", 0), (-2, 0), (2.5, 0), (True, 0), (None, 0),
                                         (float("nan"), 0), (10**30, controls.MAX_PAGE), ([1], 0)])
def test_a_page_from_the_browser_is_a_page_number(value, page) -> None:
    assert controls.page_number(value) == page


def test_a_sort_from_the_browser_is_a_known_column_or_the_default() -> None:
    default = {"column": "started_at", "descending": True}
    columns = {"cost": "cost", "started_at": "started_at"}
    assert controls.sort_choice({"column": "cost", "descending": False}, columns, default) == \
        {"column": "cost", "descending": False}
    for forged in ({"column": "nope"}, {"column": ["cost"]}, "cost", None, [1]):
        assert controls.sort_choice(forged, columns, default) == default


def test_clean_values_drop_empty_controls() -> None:
    assert controls.clean_values({"a": None, "b": "", "c": [], "d": ["x"], "e": 0}) == {"d": ["x"], "e": 0}


def test_pager_and_sort_clicks() -> None:
    assert calls.next_page("calls-next", 0, 120) == 1 and calls.next_page("calls-next", 2, 120) == 2
    assert calls.next_page("calls-prev", 0, 120) == 0 and calls.next_page("calls-prev", 2, 120) == 1
    assert calls.next_page("calls-portals", 2, 120) == 0  # a filter change goes back to the first page
    assert calls.next_page("calls-next", "abc", "lots") == 0 and calls.next_page("calls-next", 10**30, 120) == 2
    newest_first = {"column": "started_at", "descending": True}
    assert calls.next_sort("cost", newest_first) == {"column": "cost", "descending": True}
    assert calls.next_sort("cost", {"column": "cost", "descending": True}) == {"column": "cost", "descending": False}
    with pytest.raises(ValueError):
        calls.next_sort("1; DROP TABLE cdrs", None)


def test_days_until_full() -> None:
    assert recordings.days_until_full(50, 100, window_bytes=70, window_days=14) == pytest.approx(10.0)
    assert recordings.days_until_full(100, 100, 70, 14) == 0.0
    assert recordings.days_until_full(10, 100, 0, 14) is None
    assert "full in about 10 days" in recordings.quota_text(50, 100, 10.0)
    assert "no estimate" in recordings.quota_text(50, 100, None)


def test_growth_window_starts_at_the_first_day_of_a_young_warehouse() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    daily = pd.DataFrame({"day": [date(2026, 11, 1), date(2026, 11, 25), date(2026, 11, 26)],
                          "bytes": [999, 100, 50]})
    assert recordings.growth_window(daily, now) == (150, 1.5)  # Nov 25 00:00 to Nov 26 12:00
    assert recordings.growth_window(daily.iloc[0:1], now) == (0, 0.0)


def test_spend_totals_and_change() -> None:
    current = pd.DataFrame({"key": ["RUB", None], "currency": ["RUB", None], "calls": [10, 4],
                            "billed_s": [600, 0], "cost": [Decimal("12.00"), Decimal("0")]})
    previous = pd.DataFrame({"key": ["RUB"], "currency": ["RUB"], "calls": [8], "billed_s": [480],
                             "cost": [Decimal("10.00")]})
    assert spend.totals_rows(current, previous) == [("RUB", "10", "10", "12.00 RUB", "10.00 RUB", "+20.0 %")]
    assert spend.change(Decimal("5"), None) == "new" and spend.change(None, None) == "—"
    assert spend.change(Decimal("5"), Decimal("10")) == "-50.0 %"


def test_alert_count_rows_list_every_kind() -> None:
    counts = pd.DataFrame({"type": ["controller_outage", "controller_outage", "stale_key"],
                           "state": ["open", "resolved", None], "count": [2, 3, 7]})
    rows = dict(alerts.count_rows(counts))
    assert rows["The licence Controller is not answering"] == "5 (2 open)"
    assert rows["A call used an out-of-date direct-access key"] == "7"
    assert rows["An answered call has no tariff"] == "0" and len(rows) == len(alerts.TYPES)


def test_alert_count_rows_leave_out_withdrawn_alerts() -> None:
    counts = pd.DataFrame({"type": ["controller_outage", "controller_outage", "extranet_call", "extranet_call"],
                           "state": ["open", "retracted", None, "retracted"], "count": [1, 4, 2, 3]})
    rows = dict(alerts.count_rows(counts))
    assert rows["The licence Controller is not answering"] == "1 (1 open)"
    assert rows["An extranet user called out on a paid line"] == "2"


def test_cdr_rows_print_the_cdr_strings_and_hide_bookkeeping() -> None:
    cdr = {"call_id": "c-1", "started_at": datetime(2026, 11, 26, 7, 0, tzinfo=UTC),
           "cost": Decimal("1.50"), "cost_text": "1.5", "rate_per_min": Decimal("2.200000"),
           "rate_per_min_text": "2.20", "extranet": False, "kafka_offset": 9, "region": None}
    assert call_view.cdr_rows(cdr) == [("call id", "c-1"), ("started", "2026-11-26 07:00:00 UTC"),
                                       ("cost", "1.5"), ("rate per minute", "2.20"), ("extranet user", "no"),
                                       ("region", "—")]  # the fields in the reader's words (labels.py)
