"""Rating a call against a tariff table (contract v1, section "Rating").

A :class:`TariffTable` is indexed by ``(line, direction)`` and then by prefix,
each prefix holding its rows sorted by ``valid_from``. A lookup probes the
rated number's prefixes from the longest length present in the table to the
shortest and, for the first prefix that has a row already valid when the call
started, takes the latest such row: "longest prefix wins; among equal
prefixes, the latest ``valid_from``" in a handful of dict probes and a bisect.

Money is :class:`decimal.Decimal` throughout; ``rate_per_min`` keeps the
spelling of the CSV (``1.50`` stays ``1.50``). :func:`load_tariffs` reads and
checks a CSV file; it refuses a bad file as a whole rather than skip rows,
because a silently missing row would rate calls wrongly for months.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import NamedTuple

from streams.domain.events import DIRECTIONS, LINES
from streams.domain.timefmt import parse_ts_us

INTERNAL_REGION = "internal"
USER_REF_PREFIX = "user:"
ZERO_COST = Decimal("0.00")
_CENT = Decimal("0.01")
_SIXTY = Decimal(60)
# Precision far beyond any realistic tariff, so that the only rounding of a
# cost is the final half-up to cents (no double rounding of ``x / 60``).
_MONEY = Context(prec=60, rounding=ROUND_HALF_UP)
_NON_DIGITS = re.compile(r"[^0-9]")


class TariffError(ValueError):
    """A tariff table that cannot be used; the message names file, line and problem."""


@dataclass(frozen=True, slots=True)
class TariffRow:
    """One row of a tariff table; ``valid_from_us`` is UTC microseconds."""

    line: str
    direction: str
    prefix: str
    region: str
    rate_per_min: Decimal
    connect_fee: Decimal
    increment_s: int
    min_s: int
    currency: str
    valid_from_us: int

    @property
    def key(self) -> tuple[str, str, str, int]:
        """The identity of a row: two rows with the same key make a table ambiguous."""
        return (self.line, self.direction, self.prefix, self.valid_from_us)


class Rating(NamedTuple):
    """The rating fields of a CDR; ``unrated`` is for the alert rules, not the JSON."""

    region: str | None
    rate_per_min: Decimal | None
    billed_s: int
    cost: Decimal
    currency: str | None
    unrated: bool


NOT_RATED = Rating(None, None, 0, ZERO_COST, None, False)
INTERNAL_RATING = Rating(INTERNAL_REGION, None, 0, ZERO_COST, None, False)


class _PrefixRows(NamedTuple):
    valid_from: list[int]  # ascending, parallel to rows
    rows: list[TariffRow]


class TariffTable:
    """An immutable, indexed set of tariff rows."""

    __slots__ = ("rows", "_index", "_lengths")

    def __init__(self, rows: Iterable[TariffRow]) -> None:
        self.rows: tuple[TariffRow, ...] = tuple(rows)
        seen: set[tuple[str, str, str, int]] = set()
        index: dict[tuple[str, str], dict[str, _PrefixRows]] = {}
        for row in sorted(self.rows, key=lambda r: r.valid_from_us):
            if row.key in seen:
                raise TariffError(f"duplicate tariff row {row.key!r}")
            seen.add(row.key)
            by_prefix = index.setdefault((row.line, row.direction), {})
            bucket = by_prefix.setdefault(row.prefix, _PrefixRows([], []))
            bucket.valid_from.append(row.valid_from_us)
            bucket.rows.append(row)
        self._index = index
        # Prefix lengths present per (line, direction), longest first: a lookup
        # probes only lengths that can match.
        self._lengths = {
            key: tuple(sorted({len(p) for p in by_prefix}, reverse=True))
            for key, by_prefix in index.items()
        }

    def __len__(self) -> int:
        return len(self.rows)

    def lookup(self, line: str, direction: str, digits: str, at_us: int) -> TariffRow | None:
        """The row rating ``digits`` on ``line``/``direction`` for a call started at ``at_us``."""
        by_prefix = self._index.get((line, direction))
        if by_prefix is None or not digits:
            return None
        size = len(digits)
        for length in self._lengths[(line, direction)]:
            if length > size:
                continue
            bucket = by_prefix.get(digits[:length])
            if bucket is None:
                continue
            position = bisect_right(bucket.valid_from, at_us)
            if position:
                return bucket.rows[position - 1]
        return None


def digits_only(number: str | None) -> str:
    """The ASCII digits of a phone number or id (``""`` for None or a user ref)."""
    if not number:
        return ""
    if number[0] == "+" and number.isascii() and number[1:].isdigit():
        return number[1:]  # a validated phone: no regex needed
    return _NON_DIGITS.sub("", number)


def rated_number(direction: str, to: str, line_number: str | None) -> str:
    """Digits of the number a call is rated on: ``to`` outbound, ``line_number`` inbound.

    A user ref (``user:42``) is nobody's phone number: it rates as no digits
    (no row matches) rather than as the digits of the user id.
    """
    number = to if direction == "outbound" else line_number
    if number is None or number.startswith(USER_REF_PREFIX):
        return ""
    return digits_only(number)


def billed_seconds(talk_s: Decimal, row: TariffRow) -> int:
    """``max(min_s, ceil(t / increment_s) * increment_s)`` with ``t = ceil(talk_s)``; 0 if t is 0."""
    whole = math.ceil(talk_s)
    if whole <= 0:
        return 0
    increments = -(-whole // row.increment_s)
    return max(row.min_s, increments * row.increment_s)


def call_cost(billed_s: int, row: TariffRow) -> Decimal:
    """``connect_fee + rate_per_min * billed_s / 60``, half-up to cents; 0.00 when nothing is billed."""
    if billed_s == 0:
        return ZERO_COST
    per_minute = _MONEY.multiply(row.rate_per_min, Decimal(billed_s))
    total = _MONEY.add(_MONEY.divide(per_minute, _SIXTY), row.connect_fee)
    return total.quantize(_CENT, rounding=ROUND_HALF_UP, context=_MONEY)


def rate_call(table: TariffTable, *, line: str, direction: str, to: str,
              line_number: str | None, started_at_us: int, talk_s: Decimal | None) -> Rating:
    """Rate one call; ``talk_s`` None (an incomplete call) looks up the row but bills nothing."""
    if line == "internal" or direction == "internal":
        return INTERNAL_RATING
    row = table.lookup(line, direction, rated_number(direction, to, line_number), started_at_us)
    talked = talk_s is not None and talk_s > 0
    if row is None:
        # A zero-second call costs nothing wherever it went: only a call that
        # talked and found no row is worth an unrated_call alert.
        return Rating(None, None, 0, ZERO_COST, None, talked)
    billed = billed_seconds(talk_s, row) if talk_s is not None and talked else 0
    return Rating(row.region, row.rate_per_min, billed, call_cost(billed, row), row.currency, False)


# --- the CSV form ----------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@")


def _is_region(region: str) -> bool:
    """What ``warehouse/output_checks.py`` accepts as a CDR's region (the stricter subset)."""
    return (len(region) <= 64 and region.isprintable() and not region.startswith(_FORMULA_START))


HEADER = ("line", "direction", "prefix", "region", "rate_per_min", "connect_fee",
          "increment_s", "min_s", "currency", "valid_from")
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")
_INTEGER = re.compile(r"-?[0-9]+\Z")
_PREFIX = re.compile(r"[0-9]*\Z")
_CURRENCY = re.compile(r"[A-Z]{3}\Z")


def load_tariffs(path: str | os.PathLike[str]) -> TariffTable:
    """Read and check a tariff CSV; any problem raises :class:`TariffError` naming file and line."""
    name = str(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except OSError as exc:
        raise TariffError(f"{name}: cannot read tariff file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise TariffError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return parse_tariffs(text, name)


def parse_tariffs(text: str, name: str = "<tariffs>") -> TariffTable:
    """Parse tariff CSV text; ``name`` is used in error messages in place of a file name."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise TariffError(f"{name}:1: empty file (expected the header {','.join(HEADER)})")
        if tuple(header) != HEADER:
            raise TariffError(f"{name}:1: wrong header {','.join(header)!r}, expected {','.join(HEADER)!r}")
        rows: list[TariffRow] = []
        first_line: dict[tuple[str, str, str, int], int] = {}
        for cells in reader:
            if not cells:
                continue  # a blank line (e.g. the last one) carries no row
            row = _parse_row(cells, f"{name}:{reader.line_num}")
            if row.key in first_line:
                raise TariffError(f"{name}:{reader.line_num}: duplicate (line, direction, prefix, "
                                  f"valid_from), first on line {first_line[row.key]}")
            first_line[row.key] = reader.line_num
            rows.append(row)
    except csv.Error as exc:
        raise TariffError(f"{name}:{reader.line_num}: malformed CSV: {exc}") from exc
    if not rows:
        raise TariffError(f"{name}:{reader.line_num}: no tariff rows after the header")
    return TariffTable(rows)


def _parse_row(cells: list[str], where: str) -> TariffRow:
    if len(cells) != len(HEADER):
        raise TariffError(f"{where}: {len(cells)} columns, expected {len(HEADER)}")
    line, direction, prefix, region, rate, fee, increment, minimum, currency, valid_from = cells
    if line not in LINES:
        raise TariffError(f"{where}: bad line {line!r}, expected one of {', '.join(sorted(LINES))}")
    if direction not in DIRECTIONS:
        raise TariffError(f"{where}: bad direction {direction!r}, "
                          f"expected one of {', '.join(sorted(DIRECTIONS))}")
    if not _PREFIX.match(prefix):
        raise TariffError(f"{where}: prefix {prefix!r} must be digits only (or empty)")
    if not region.strip():
        raise TariffError(f"{where}: empty region")
    if not _is_region(region):
        # The sink refuses such a region (it would start a spreadsheet formula in the
        # billing CSV, or not fit the column): better said here, at start-up.
        raise TariffError(f"{where}: bad region {region[:80]!r}: 1-64 characters, no control "
                          "characters, not starting with = + - @")
    if not _CURRENCY.match(currency):
        raise TariffError(f"{where}: bad currency {currency!r}, expected an ISO 4217 code like RUB")
    valid_from_us = parse_ts_us(valid_from)
    if valid_from_us is None:
        raise TariffError(f"{where}: bad timestamp in valid_from: {valid_from!r}")
    return TariffRow(line, direction, prefix, region, _money(rate, "rate_per_min", where),
                     _money(fee, "connect_fee", where), _count(increment, "increment_s", 1, where),
                     _count(minimum, "min_s", 0, where), currency, valid_from_us)


def _money(text: str, column: str, where: str) -> Decimal:
    if not _DECIMAL.match(text):
        raise TariffError(f"{where}: bad decimal in {column}: {text!r}")
    if text.startswith("-"):
        raise TariffError(f"{where}: negative money in {column}: {text!r}")
    return Decimal(text)


def _count(text: str, column: str, least: int, where: str) -> int:
    if not _INTEGER.match(text):
        raise TariffError(f"{where}: bad integer in {column}: {text!r}")
    value = int(text)
    if value < least:
        raise TariffError(f"{where}: {column} must be >= {least}, got {value}")
    return value
