"""What the pages print: numbers, money, sizes, freshness; which URLs become links."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from dashboards import formatting as fmt
from dashboards.safe import playable, safe_url

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("value, text", [(None, "—"), (float("nan"), "—"), (0, "0"), (1234567, "1 234 567")])
def test_count(value, text) -> None:
    assert fmt.count(value) == text


@pytest.mark.parametrize("value, text", [(Decimal("1432183.325"), "1 432 183.33 RUB"), (Decimal("-5"), "-5.00 RUB"),
                                         (Decimal("0.1"), "0.10 RUB")])
def test_money_is_decimal_exact(value, text) -> None:
    assert fmt.money(value, "RUB") == text


def test_money_by_currency_biggest_first_and_empty() -> None:
    assert fmt.money_by_currency({"EUR": Decimal("30"), "RUB": Decimal("1200")}) == "1 200.00 RUB · 30.00 EUR"
    assert fmt.money_by_currency({}) == "0.00"


@pytest.mark.parametrize("value, text", [(Decimal("45.678"), "45.7 s"), (725, "12 min 5 s"), (10920, "3 h 02 min"),
                                         (None, "—")])
def test_seconds(value, text) -> None:
    assert fmt.seconds(value) == text


@pytest.mark.parametrize("value, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 * 1024**4, "3.0 TiB")])
def test_size(value, text) -> None:
    assert fmt.size(value) == text


def test_percent_and_age() -> None:
    assert fmt.percent(0.70017) == "70.0 %" and fmt.percent(None) == "—"
    assert [fmt.age(s) for s in (4.2, 185, 7300, 200000, None)] == ["4 s", "3 min", "2 h", "2 d", "—"]


def test_freshness_is_honest_about_both_clocks() -> None:
    published = datetime(2026, 11, 26, 7, 0, 0, tzinfo=UTC)
    newest = datetime(2026, 11, 26, 6, 59, 58, tzinfo=UTC)
    text, level = fmt.freshness({"published_at": published, "age_s": 3.0, "newest": {"cdrs": newest}}, 30)
    assert level == "fresh"
    assert text == "Updated 3 s ago (2026-11-26 07:00:00 UTC) · newest call 2026-11-26 06:59:58 UTC"
    text, level = fmt.freshness({"published_at": published, "age_s": 600.0, "newest": {}}, 30)
    assert level == "stale" and text.startswith("STALE: Updated 10 min ago") and "no calls yet" in text
    text, level = fmt.freshness({"published_at": None, "age_s": None, "newest": {}}, 30)
    assert level == "empty" and "sink" in text


@pytest.mark.parametrize("url", ["https://rec.example.com/p-01/a.mp3", "http://10.0.0.5:8080/r?id=1&x=2"])
def test_safe_urls_pass(url) -> None:
    assert safe_url(url) == url


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,<b>x</b>",
                                 "//evil.example/x", "ftp://host/file.mp3", "https://", "https://u:p@host/x",
                                 "https://host/a b", "https://host/\nx", "https://host:99999/x", "", None, 42,
                                 "https://h/" + "a" * 3000, " https://host/x", "vbscript:x"])
def test_unsafe_urls_are_refused(url) -> None:
    assert safe_url(url) is None


def test_playable_only_known_audio_over_http() -> None:
    assert playable("https://rec.example.com/a.MP3") and playable("http://h/x.wav")
    assert not playable("https://rec.example.com/a.mp3.html") and not playable("javascript:x.mp3")
    assert not playable(None)


def test_the_missing_data_warning_counts_files_and_rows() -> None:
    assert fmt.missing_data([]) == "" and fmt.missing_data(None) == ""
    text = fmt.missing_data([{"state": "quarantined", "table": "cdrs", "rows": 1234},
                             {"state": "unreadable", "table": "events", "rows": 5},
                             {"state": "quarantined", "table": "cdrs", "rows": 1}])
    assert "2 warehouse files quarantined and 1 warehouse file unreadable" in text
    assert "(1 235 rows of cdrs, 5 rows of events)" in text and "callstream rebuild" in text


@pytest.mark.parametrize("locale", ["en", "ru"])
def test_money_and_counts_print_what_babel_prints_without_it(locale) -> None:
    """money() and count() format with Python's own grouping (a chart prints hundreds of amounts):
    the text is Babel's ``#,##0.00`` / ``#,##0`` in both locales, digit for digit."""
    import random

    from dashboards.i18n import speaking

    rng = random.Random(15)
    amounts = [Decimal(rng.randrange(10 ** rng.randint(1, 14))) / 100 for _ in range(3000)]
    amounts += [Decimal("0"), Decimal("999.995"), Decimal("1E+5"), Decimal("1234.5"), Decimal("-1234.565")]
    with speaking(locale):
        for amount in amounts:
            cents = amount.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
            sign = "-" if cents < 0 else ""
            assert fmt.money(amount, "RUB") == f"{sign}{fmt.number(abs(cents), '#,##0.00')} RUB", amount
        for n in [rng.randint(-10 ** 9, 10 ** 13) for _ in range(3000)] + [0, 999, 1000, -1000]:
            assert fmt.count(n) == fmt.number(n, "#,##0"), n
    with speaking("ru"):
        assert fmt.money(Decimal("1234567.891"), "RUB") == "1 234 567,89 RUB"


def test_chart_days_are_formatted_once_per_day_and_locale() -> None:
    from datetime import date

    from dashboards.i18n import speaking

    day = date(2026, 11, 26)
    with speaking("en"):
        assert fmt.short_day(day) == "26 Nov"
    with speaking("ru"):
        assert fmt.short_day(day) == "26 нояб."
    with speaking("en"):
        assert fmt.short_day(day) == "26 Nov"  # the cache is per locale
