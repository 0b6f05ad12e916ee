"""Figures are pure functions of query rows: hand-made frames in, plotly figures (plain dicts) out."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import pytest

from dashboards import figures

pytestmark = pytest.mark.unit

D1, D2 = date(2026, 11, 24), date(2026, 11, 25)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_empty_figure_says_why() -> None:
    fig = figures.empty("No spend in this period")
    assert fig["layout"]["annotations"][0]["text"] == "No spend in this period"
    assert not fig["data"]


def _svg(uri: str) -> str:
    import base64

    assert uri.startswith("data:image/svg+xml;base64,")
    return base64.b64decode(uri.split(",", 1)[1]).decode()


def test_sparkline_is_an_svg_of_numbers_only() -> None:
    svg = _svg(figures.sparkline_svg([Decimal("1"), None, Decimal("3")], "#123456"))
    assert svg.startswith("<svg") and 'stroke="#123456"' in svg
    line = svg.split('<polyline points="')[1].split('"')[0]
    assert line == "2.0,31.3 198.0,2.0"  # the None day is skipped; from 0: 1 is a third up, 3 the top
    assert "polyline" not in _svg(figures.sparkline_svg([]))
    flat = _svg(figures.sparkline_svg([5]))  # one day: a flat line across
    assert flat.split('<polyline points="')[1].split('"')[0].count(",") == 2


def test_spend_by_region_stacks_regions_and_prints_exact_money() -> None:
    rows = pd.DataFrame({"day": [D1, D1, D2, D2], "region": ["Russia", "Europe", "Russia", None],
                         "line": ["operator"] * 4, "currency": ["RUB", "RUB", "RUB", None],
                         "calls": [3, 1, 2, 5], "billed_s": [60, 60, 60, 0],
                         "cost": [Decimal("10.10"), Decimal("2.20"), Decimal("5.05"), Decimal("0.00")]})
    fig = figures.spend_by_region_over_time(rows)
    names = [t["name"] for t in fig["data"]]
    assert names == ["Russia", "Europe"]  # biggest first; the zero-cost internal row is left out
    russia = fig["data"][0]
    assert list(russia["y"]) == [10.1, 5.05]
    assert [h.split(": ")[1] for h in russia["hovertext"]] == ["10.10 RUB", "5.05 RUB"]
    assert json.loads(russia["customdata"][0]) == {"start": D1.isoformat(), "end": D1.isoformat(),
                                                   "regions": ["Russia"]}
    assert fig["layout"]["barmode"] == "relative"


def test_spend_by_region_groups_small_regions_as_other() -> None:
    regions = [f"r{n:02d}" for n in range(figures.TOP_REGIONS + 3)]
    rows = pd.DataFrame({"day": [D1] * len(regions), "region": regions, "line": ["operator"] * len(regions),
                         "currency": ["RUB"] * len(regions), "calls": [1] * len(regions),
                         "billed_s": [60] * len(regions),
                         "cost": [Decimal(100 - n) for n in range(len(regions))]})
    names = [t["name"] for t in figures.spend_by_region_over_time(rows)["data"]]
    assert len(names) == figures.TOP_REGIONS + 1 and "other regions" in names


def test_spend_with_two_currencies_names_the_currency() -> None:
    rows = pd.DataFrame({"day": [D1, D1], "region": ["Europe", "Europe"], "line": ["operator"] * 2,
                         "currency": ["RUB", "EUR"], "calls": [1, 1], "billed_s": [60, 60],
                         "cost": [Decimal("5"), Decimal("7")]})
    names = sorted(t["name"] for t in figures.spend_by_region_over_time(rows)["data"])
    assert names == ["Europe (EUR)", "Europe (RUB)"]


def test_spend_by_dimension_leaves_out_calls_without_currency() -> None:
    rows = pd.DataFrame({"key": ["operator", "internal"], "currency": ["RUB", None], "calls": [2, 9],
                         "billed_s": [120, 0], "cost": [Decimal("3.30"), Decimal("0.00")]})
    fig = figures.spend_by_dimension(rows, "Spend by line")
    assert [t["name"] for t in fig["data"]] == ["RUB"]
    assert list(fig["data"][0]["x"]) == ["operator"] and list(fig["data"][0]["text"]) == ["3.30 RUB"]


def test_period_comparison_has_previous_then_current() -> None:
    now = pd.DataFrame({"key": ["RUB", None], "cost": [Decimal("12.00"), Decimal("0")]})
    before = pd.DataFrame({"key": ["RUB"], "cost": [Decimal("10.00")]})
    fig = figures.period_comparison(now, before)
    assert [t["name"] for t in fig["data"]] == ["previous period", "this period"]
    assert list(fig["data"][1]["x"]) == ["RUB"] and list(fig["data"][1]["text"]) == ["12.00 RUB"]


def test_bars_label_with_given_text_and_grow_with_rows() -> None:
    rows = pd.DataFrame({"key": [f"k{n}" for n in range(20)], "bytes": list(range(20))})
    fig = figures.bars(rows, "key", "bytes", "By line", text=[f"{n} B" for n in range(20)])
    assert list(fig["data"][0]["y"])[:2] == ["k0", "k1"] and fig["data"][0]["text"][3] == "3 B"
    assert fig["layout"]["height"] > 320
    assert figures.bars(rows.iloc[0:0], "key", "bytes", "By line")["layout"]["annotations"]


def test_storage_and_growth_from_recording_bytes_daily() -> None:
    daily = pd.DataFrame({"day": [D1, D2], "recordings": [2, 3], "bytes": [1024, 2048],
                          "cumulative_bytes": [5120, 7168]})
    storage, growth = figures.storage_over_time(daily), figures.growth_per_day(daily)
    assert list(storage["data"][0]["y"]) == [5120.0, 7168.0]
    assert list(storage["data"][0]["hovertext"]) == ["5.0 KiB", "7.0 KiB"]
    assert list(growth["data"][0]["y"]) == [1024.0, 2048.0]


def test_storage_by_key_one_line_per_key_biggest_first() -> None:
    rows = pd.DataFrame({"day": [D1, D1, D2], "key": ["p-1", "p-2", "p-2"], "bytes": [10, 20, 30],
                         "cumulative_bytes": [10, 20, 50]})
    fig = figures.storage_by_key(rows, "By portal")
    assert [t["name"] for t in fig["data"]] == ["p-2", "p-1"]
    assert list(fig["data"][0]["y"]) == [20.0, 50.0]


def _outages() -> pd.DataFrame:
    return pd.DataFrame({
        "alert_id": ["o1", "o2"], "type": ["controller_outage"] * 2, "portal_id": ["p-1", "p-2"],
        "call_id": [None, None], "ts": [datetime(2026, 11, 25, 10, 10, tzinfo=UTC),
                                        datetime(2026, 11, 26, 11, 0, tzinfo=UTC)],
        "state": ["resolved", "open"],
        "detail": ['{"state":"resolved","opened_at":"2026-11-25T10:00:00.000Z",'
                   '"resolved_at":"2026-11-25T10:10:00.000Z"}',
                   '{"state":"open","opened_at":"2026-11-26T11:00:00.000Z","resolved_at":null}']})


def test_outage_spans_from_alert_detail() -> None:
    spans = figures.outage_spans(_outages(), NOW)
    assert spans[0]["opened"] == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert spans[0]["resolved"] == datetime(2026, 11, 25, 10, 10, tzinfo=UTC)
    assert spans[1]["resolved"] is None and spans[1]["end"] == NOW and spans[1]["state"] == "open"


def test_outage_span_survives_a_broken_detail() -> None:
    broken = _outages().assign(detail=["not json", None])
    spans = figures.outage_spans(broken, NOW)
    assert spans[0]["opened"] == broken["ts"][0] and spans[0]["resolved"] is None


def test_bypass_timeline_has_outage_bars_and_bypass_dots() -> None:
    bypasses = pd.DataFrame({"alert_id": ["b1"], "type": ["controller_bypassed"], "portal_id": ["p-3"],
                             "call_id": ["c-1"], "ts": [NOW], "state": [None], "detail": ["{}"]})
    fig = figures.bypass_timeline(bypasses, _outages(), NOW)
    assert [t["name"] for t in fig["data"]] == ["outage (open)", "outage (resolved)", "bypassed call"]
    assert list(fig["data"][2]["y"]) == ["p-3"]
    assert list(fig["data"][1]["x"]) == [600_000.0]  # ten minutes, in milliseconds
    empty = figures.bypass_timeline(bypasses.iloc[0:0], _outages().iloc[0:0], NOW)
    assert empty["layout"]["annotations"][0]["text"] == "No Controller bypasses in this period"



def test_text_from_the_data_reaches_plotly_inert() -> None:
    markup = '<a href="javascript:alert(1)">x</a><b>'
    rows = pd.DataFrame({"key": [markup], "currency": ["<i>"], "calls": [1], "billed_s": [60],
                         "cost": [Decimal("1.00")]})
    fig = figures.spend_by_dimension(rows, "Spend by line")
    assert list(fig["data"][0]["x"]) == ['&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;&lt;b&gt;']
    assert fig["data"][0]["name"] == "&lt;i&gt;" and fig["data"][0]["text"][0] == "1.00 &lt;i&gt;"
    bars = figures.bars(rows, "key", "calls", "t", text=[markup])
    assert "<" not in bars["data"][0]["y"][0] + bars["data"][0]["text"][0]
    assert figures.esc("a & <b>") == "a &amp; &lt;b&gt;"


def test_spend_over_a_long_period_is_weekly() -> None:
    from datetime import timedelta

    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(120)]
    rows = pd.DataFrame({"day": days, "region": ["Europe"] * 120, "currency": ["RUB"] * 120,
                         "cost": [Decimal("1.00")] * 120})
    fig = figures.spend_by_region_over_time(rows)
    assert fig["layout"]["title"]["text"] == "Spend by region per week"
    starts = [date.fromisoformat(json.loads(c)["start"]) for c in fig["data"][0]["customdata"]]
    assert all(d.weekday() == 0 for d in starts) and len(starts) == 18  # Mondays from 2025-12-29 on
    assert list(fig["data"][0]["x"])[:2] == ["29 Dec", "5 Jan"]  # days on the axis, never milliseconds
    assert sum(fig["data"][0]["y"]) == pytest.approx(120.0)
    short = figures.spend_by_region_over_time(rows.head(30))
    assert short["layout"]["title"]["text"] == "Spend by region per day" and len(short["data"][0]["x"]) == 30


def test_spend_over_time_sets_its_margins_instead_of_plotly_finding_them():
    """Plotly's automargin draws a figure twice; the legend's room comes from its longest name."""
    from datetime import date
    from decimal import Decimal

    import pandas as pd

    from dashboards import figures

    rows = pd.DataFrame({"day": [date(2026, 11, 1), date(2026, 11, 2)], "region": ["Moscow", "A" * 30],
                         "currency": ["RUB", "RUB"], "cost": [Decimal("1.50"), Decimal("2.00")]})
    fig = figures.spend_over_time(rows)
    assert fig["layout"]["xaxis"]["automargin"] is False and fig["layout"]["yaxis"]["automargin"] is False
    assert fig["layout"]["margin"]["r"] == figures.legend_width(["A" * 30, "Moscow"]) == 56 + 7 * 30
    assert figures.legend_width([]) == 80 and figures.legend_width(["x" * 100]) == 320


def test_horizontal_bars_get_their_left_margin_from_the_labels() -> None:
    """Plotly's automargin draws a chart twice; the labels' room is known from their length."""
    rows = pd.DataFrame({"key": ["Moscow", "u-1 · p-00 &"], "bytes": [3, 2]})
    fig = figures.bars(rows, "key", "bytes", "By region")
    layout = fig["layout"]
    assert layout["yaxis"]["automargin"] is False and layout["xaxis"]["automargin"] is False
    # "&" reaches plotly as "&amp;" but is drawn as one character.
    assert layout["margin"]["l"] == figures.label_width(["u-1 · p-00 &amp;"]) == int(16 + 7 * 11 + 8.5)
    assert figures.label_width(["x"]) == 48 and figures.label_width(["x" * 40]) == 296
    assert figures.label_width(["Москва"]) == 16 + 6 * 8.5  # wider letters than ASCII
    long = figures.bars(pd.DataFrame({"key": ["y" * 41], "bytes": [1]}), "key", "bytes", "t")
    # Too long to guess: plotly finds the margin.
    assert long["layout"]["yaxis"]["automargin"] is True and long["layout"]["margin"]["l"] == 48


def test_figures_are_plain_json_plotly_accepts() -> None:
    """Figures are dicts as plotly.js reads them: plotly.py's own validation accepts every one."""
    import plotly.graph_objects as go
    import plotly.io

    rows = pd.DataFrame({"day": [D1, D2], "region": ["Russia", "Europe"], "currency": ["RUB", "RUB"],
                         "cost": [Decimal("1.50"), Decimal("2.00")]})
    keyed = pd.DataFrame({"key": ["operator"], "currency": ["RUB"], "cost": [Decimal("3.30")],
                          "bytes": [10]})
    daily = pd.DataFrame({"day": [D1, D2], "key": ["p-1", "p-1"], "bytes": [1, 2], "cumulative_bytes": [1, 3]})
    bypasses = pd.DataFrame({"alert_id": ["b1"], "type": ["controller_bypassed"], "portal_id": ["p-3"],
                             "call_id": ["c-1"], "ts": [NOW], "state": [None], "detail": ["{}"]})
    made = [figures.empty("nothing"), figures.spend_by_region_over_time(rows),
            figures.spend_by_dimension(keyed, "t", "lines"), figures.period_comparison(keyed, keyed),
            figures.bars(keyed, "key", "bytes", "t"), figures.bars(keyed, "key", "bytes", "t", horizontal=False),
            figures.storage_over_time(daily), figures.growth_per_day(daily), figures.storage_by_key(daily, "t"),
            figures.bypass_timeline(bypasses, _outages(), NOW)]
    for fig in made:
        assert set(fig) == {"data", "layout"} and isinstance(fig["data"], list)
        go.Figure(fig)  # raises on any property plotly does not know
        assert json.loads(plotly.io.json.to_json_plotly(fig))["layout"]["template"]
