"""Text for numbers, money, sizes, times and freshness: the words every page prints.

Pure functions of the value and the current locale (i18n.py): English keeps the
house style (``1 234 567``, ``70.1 %``, ISO days), Russian is formatted by Babel
(``1 234 567``, ``70,1 %``, ``26.11.2026``, decimal comma). Money stays ``Decimal``
all the way to its text. Instants are shown in a time zone (``zone``), UTC if none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

from dashboards.i18n import N_, _, current_locale

_UNITS = (N_("B"), N_("KiB"), N_("MiB"), N_("GiB"), N_("TiB"), N_("PiB"))


def _ru() -> bool:
    return current_locale() == "ru"


def number(value: Any, pattern: str) -> str:
    """``value`` by a Babel ``pattern`` (``#,##0.00``) in the current locale (English: spaces group)."""
    if _ru():
        return format_decimal(value, format=pattern, locale="ru").replace("\u00a0", " ")
    return format_decimal(value, format=pattern, locale="en").replace(",", " ")


def missing(value: Any) -> bool:
    """True for None, NaN and pandas' NA/NaT (what a NULL turns into)."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT and NA are not equal to themselves
    except (TypeError, ValueError):
        return False


def count(value: Any) -> str:
    """``1 234 567`` (thin spaces would confuse copy-paste: plain spaces); as Babel's ``#,##0`` in
    either locale (both group by three with a space here), without its pattern machinery."""
    return "—" if missing(value) else f"{int(value):,}".replace(",", " ")


def percent(value: Any, digits: int = 1) -> str:
    """A share in [0, 1] as ``70.1 %``."""
    if missing(value):
        return "—"
    return number(Decimal(repr(float(value) * 100)).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP),
                  "0." + "0" * digits if digits else "0") + " %"


def seconds(value: Any) -> str:
    """A duration: ``65.6 s``, ``12 min 5 s``, ``3 h 02 min``."""
    if missing(value):
        return "—"
    total = float(value)
    if total < 60:
        return f"{number(Decimal(repr(total)).quantize(Decimal('0.1'), ROUND_HALF_UP), '0.0')} {_('s')}"
    minutes, secs = divmod(int(round(total)), 60)
    if minutes < 60:
        return f"{minutes} {_('min')} {secs} {_('s')}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} {_('h')} {minutes:02d} {_('min')}"


def size(value: Any) -> str:
    """Bytes in binary units: ``3.5 TiB``."""
    if missing(value):
        return "—"
    amount = float(value)
    exponent = 0 if amount < 1024 else min(int(math.log(amount, 1024)), len(_UNITS) - 1)
    scaled = Decimal(repr(amount / 1024 ** exponent)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return f"{int(amount)} {_('B')}" if exponent == 0 else f"{number(scaled, '0.0')} {_(_UNITS[exponent])}"


def money(amount: Any, currency: Any = None) -> str:
    """``1 432 183.32 RUB`` from a Decimal (never through float)."""
    if missing(amount):
        return "—"
    value = Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = ("-" if value < 0 else "") + grouped_cents(abs(value))
    return f"{text} {currency}" if not missing(currency) else text


def grouped_cents(value: Decimal) -> str:
    """A non-negative amount already rounded to cents as ``number(value, "#,##0.00")`` prints it:
    digits grouped by three with a space, ``.`` (Russian: ``,``) before the cents.

    Python's own formatting of the Decimal, without Babel's pattern machinery: a chart's hover
    labels print hundreds of amounts per render (a unit test holds it to Babel's text).
    """
    text = f"{value:,.2f}".replace(",", " ")
    return text.replace(".", ",") if _ru() else text


def money_by_currency(amounts: Mapping[str, Decimal]) -> str:
    """Several currencies on one line, largest first: ``1 200.00 RUB · 30.00 EUR``."""
    if not amounts:
        return money(Decimal(0))
    ordered = sorted(amounts.items(), key=lambda item: (-item[1], item[0]))
    return " · ".join(money(amount, currency) for currency, amount in ordered)


def timestamp(value: Any, zone: str | None = None) -> str:
    """An instant in ``zone`` (UTC if none): ``2026-11-26 07:14:09 UTC``, ``26.11.2026 10:14:09 MSK``."""
    if missing(value):
        return "—"
    if isinstance(value, datetime):
        local = value.astimezone(ZoneInfo(zone) if zone else UTC)
        name = "UTC" if not zone or zone == "UTC" else (local.tzname() or zone)
        if _ru():
            return f"{format_datetime(local, 'dd.MM.yyyy HH:mm:ss', tzinfo=local.tzinfo, locale='ru')} {name}"
        return f"{local:%Y-%m-%d %H:%M:%S} {name}"
    return str(value)


def day(value: Any) -> str:
    """A day as ``2026-11-26`` (Russian: ``26.11.2026``)."""
    if missing(value):
        return "—"
    if isinstance(value, (date, datetime)):
        return format_date(value, "dd.MM.yyyy", locale="ru") if _ru() else value.isoformat()[:10]
    return str(value)


def short_day(value: date) -> str:
    """A day for a chart's axis: ``26 Nov`` / ``26 нояб.``."""
    return _short_day(value, current_locale())


@lru_cache(maxsize=4096)
def _short_day(value: date, locale: str) -> str:
    # A page's charts label the same few hundred days again and again: Babel once per day and locale.
    return format_date(value, "d MMM", locale=locale)


def hour(value: datetime) -> str:
    """An hour for a chart's axis: ``14:00``."""
    return f"{value:%H}:00"


def age(seconds_ago: float | None) -> str:
    """``4 s``, ``3 min``, ``2 h``, ``5 d`` ago."""
    if seconds_ago is None:
        return "—"
    value = max(0.0, seconds_ago)
    for limit, unit, div in ((60, N_("s"), 1), (3600, N_("min"), 60), (86400, N_("h"), 3600)):
        if value < limit:
            return f"{int(value // div)} {_(unit)}"
    return f"{int(value // 86400)} {_('d')}"


def freshness(info: Mapping[str, Any], stale_after_s: float) -> tuple[str, str]:
    """(sentence, level) for the freshness badge; level is ``fresh``, ``stale`` or ``empty``.

    Honest about both clocks: when the sink last published, and the newest call in the data.
    """
    if info.get("published_at") is None:
        return _("No data yet: the warehouse has not been published (is the sink running?)"), "empty"
    newest = (info.get("newest") or {}).get("cdrs")
    text = _("Updated {age} ago ({time})").format(age=age(info.get("age_s")), time=timestamp(info["published_at"]))
    if "newest" in info:  # a user limited to some portals is not told about the others' calls
        text += " · " + (_("newest call {time}").format(time=timestamp(newest)) if newest is not None
                         else _("no calls yet"))
    level = "fresh" if (info.get("age_s") or 0) <= stale_after_s else "stale"
    if level == "stale":
        text = _("STALE: ") + text
    return text, level


def missing_data(entries: Any) -> str:
    """The warning over every page when files of the warehouse are quarantined or unreadable ("" if none).

    Says how many files, how many rows of which tables no figure includes, and what to do.
    """
    if not entries:
        return ""
    from dashboards.i18n import ngettext

    parts = []
    quarantined = sum(1 for e in entries if e["state"] == "quarantined")
    unreadable = sum(1 for e in entries if e["state"] == "unreadable")
    if quarantined:
        parts.append(ngettext("{n} warehouse file quarantined", "{n} warehouse files quarantined",
                              quarantined).format(n=quarantined))
    if unreadable:
        parts.append(ngettext("{n} warehouse file unreadable", "{n} warehouse files unreadable",
                              unreadable).format(n=unreadable))
    rows: dict[str, int] = {}
    for entry in entries:
        rows[entry["table"]] = rows.get(entry["table"], 0) + int(entry["rows"] or 0)
    lost = ", ".join(_("{n} rows of {table}").format(n=count(n), table=table) for table, n in sorted(rows.items()))
    return "⚠ " + _("Incomplete data: {parts} ({lost}); figures and downloads leave them out. Recover with "
                    "`callstream rebuild` (notes in the warehouse's quarantine/ directory).").format(
        parts=_(" and ").join(parts), lost=lost)
