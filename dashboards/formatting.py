"""Text for numbers, money, sizes, times and freshness: the words every page prints.

Pure functions; money stays ``Decimal`` all the way to its text.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Mapping

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def missing(value: Any) -> bool:
    """True for None, NaN and pandas' NA/NaT (what a NULL turns into)."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT and NA are not equal to themselves
    except (TypeError, ValueError):
        return False


def count(value: Any) -> str:
    """``1 234 567`` (thin spaces would confuse copy-paste: plain spaces)."""
    return "—" if missing(value) else f"{int(value):,}".replace(",", " ")


def percent(value: Any, digits: int = 1) -> str:
    """A share in [0, 1] as ``70.1 %``."""
    return "—" if missing(value) else f"{float(value) * 100:.{digits}f} %"


def seconds(value: Any) -> str:
    """A duration: ``65.6 s``, ``12 min 5 s``, ``3 h 02 min``."""
    if missing(value):
        return "—"
    total = float(value)
    if total < 60:
        return f"{total:.1f} s"
    minutes, secs = divmod(int(round(total)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def size(value: Any) -> str:
    """Bytes in binary units: ``3.5 TiB``."""
    if missing(value):
        return "—"
    amount = float(value)
    exponent = 0 if amount < 1024 else min(int(math.log(amount, 1024)), len(_UNITS) - 1)
    scaled = amount / 1024 ** exponent
    return f"{int(amount)} B" if exponent == 0 else f"{scaled:.1f} {_UNITS[exponent]}"


def money(amount: Any, currency: Any = None) -> str:
    """``1 432 183.32 RUB`` from a Decimal (never through float)."""
    if missing(amount):
        return "—"
    value = Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign, text = ("-", f"{-value:,.2f}") if value < 0 else ("", f"{value:,.2f}")
    text = sign + text.replace(",", " ")
    return f"{text} {currency}" if not missing(currency) else text


def money_by_currency(amounts: Mapping[str, Decimal]) -> str:
    """Several currencies on one line, largest first: ``1 200.00 RUB · 30.00 EUR``."""
    if not amounts:
        return "0.00"
    ordered = sorted(amounts.items(), key=lambda item: (-item[1], item[0]))
    return " · ".join(money(amount, currency) for currency, amount in ordered)


def timestamp(value: Any) -> str:
    """An instant as ``2026-11-26 07:14:09 UTC``."""
    if missing(value):
        return "—"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def day(value: Any) -> str:
    """A UTC day as ``2026-11-26``."""
    if missing(value):
        return "—"
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def age(seconds_ago: float | None) -> str:
    """``4 s``, ``3 min``, ``2 h``, ``5 d`` ago."""
    if seconds_ago is None:
        return "—"
    value = max(0.0, seconds_ago)
    for limit, unit, div in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600)):
        if value < limit:
            return f"{int(value // div)} {unit}"
    return f"{int(value // 86400)} d"


def freshness(info: Mapping[str, Any], stale_after_s: float) -> tuple[str, str]:
    """(sentence, level) for the freshness badge; level is ``fresh``, ``stale`` or ``empty``.

    Honest about both clocks: when the sink last published, and the newest call in the data.
    """
    if info.get("published_at") is None:
        return "No data yet: the warehouse has not been published (is the sink running?)", "empty"
    newest = (info.get("newest") or {}).get("cdrs")
    text = f"Updated {age(info.get('age_s'))} ago ({timestamp(info['published_at'])})"
    text += f" · newest call {timestamp(newest)}" if newest is not None else " · no calls yet"
    level = "fresh" if (info.get("age_s") or 0) <= stale_after_s else "stale"
    if level == "stale":
        text = "STALE: " + text
    return text, level


def missing_data(entries: Any) -> str:
    """The warning over every page when files of the warehouse are quarantined or unreadable ("" if none).

    Says how many files, how many rows of which tables no figure includes, and what to do.
    """
    if not entries:
        return ""
    parts = []
    for state in ("quarantined", "unreadable"):
        n = sum(1 for e in entries if e["state"] == state)
        if n:
            parts.append(f"{n} warehouse file{'s' if n != 1 else ''} {state}")
    rows: dict[str, int] = {}
    for entry in entries:
        rows[entry["table"]] = rows.get(entry["table"], 0) + int(entry["rows"] or 0)
    lost = ", ".join(f"{count(n)} rows of {table}" for table, n in sorted(rows.items()))
    return (f"⚠ Incomplete data: {' and '.join(parts)} ({lost}); figures and downloads leave them out. "
            "Recover with `callstream rebuild` (notes in the warehouse's quarantine/ directory).")
