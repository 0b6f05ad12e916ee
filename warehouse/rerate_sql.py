"""The domain core's rating (streams/domain/rating.py) in DuckDB SQL, over a warehouse's CDRs.

Rating needs only fields a CDR keeps: ``line``, ``direction``, ``to``,
``line_number``, ``started_at`` and ``talk_s``. The query reproduces
:func:`~streams.domain.rating.rate_call` exactly:

- no ``started_at`` (no call.started): not rated (region, rate and currency
  NULL, 0 s, 0.00); an ``internal`` line or direction: region ``internal``;
- the rated number is ``to`` outbound, ``line_number`` otherwise; a user ref
  (``user:…``) or NULL has no digits; otherwise its ASCII digits;
- the row: the longest prefix of those digits that has a row valid when the
  call started (``valid_from <= started_at``), and of that prefix the latest
  such row; a call with no digits finds none;
- billed seconds: 0 unless ``talk_s > 0``; else ``t = ceil(talk_s)`` rounded
  up to the row's increment, at least its ``min_s``;
- cost: 0.00 when nothing is billed; else ``connect_fee + rate * billed / 60``
  rounded half up to cents, in integer arithmetic (HUGEINT) on the tariff's
  own decimals, so nothing is rounded but that last step (the core computes
  with 60 digits of precision, which is exact for every table it accepts).

Money never passes through a float. The tariff table is loaded from the
parsed :class:`~streams.domain.rating.TariffTable` (already checked by the
core's own CSV reader) as a temporary table of the connection.
"""

from __future__ import annotations

from decimal import Decimal

from streams.domain.rating import TariffTable

TARIFF_TABLE = "rerate_tariffs"


def _scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def load_tariff_table(con, tariffs: TariffTable) -> int:
    """Create the temporary tariff table in ``con``; the common scale of its money columns.

    Rates and fees become whole numbers of 10^-scale units (``rate_units``, ``fee_units``):
    ``rate * billed + 60 * fee`` is then exact in integers. ``rate_text`` keeps the CSV's
    spelling, as the CDR's ``rate_per_min`` does.
    """
    rows = tariffs.rows
    scale = max([_scale(r.rate_per_min) for r in rows] + [_scale(r.connect_fee) for r in rows] + [0])
    factor = Decimal(10) ** scale
    con.execute(f"CREATE OR REPLACE TEMP TABLE {TARIFF_TABLE} (line VARCHAR, direction VARCHAR, "
                "prefix VARCHAR, prefix_len BIGINT, region VARCHAR, rate_text VARCHAR, rate_units HUGEINT, "
                "fee_units HUGEINT, increment_s BIGINT, min_s BIGINT, currency VARCHAR, valid_from_us BIGINT)")
    # Whole numbers as text: exact into HUGEINT (a Python int beyond 64 bits is not a parameter).
    con.executemany(f"INSERT INTO {TARIFF_TABLE} VALUES (?, ?, ?, ?, ?, ?, CAST(? AS HUGEINT), "
                    "CAST(? AS HUGEINT), ?, ?, ?, ?)",
                    [(r.line, r.direction, r.prefix, len(r.prefix), r.region, format(r.rate_per_min, "f"),
                      str(int(r.rate_per_min * factor)), str(int(r.connect_fee * factor)), r.increment_s,
                      r.min_s, r.currency, r.valid_from_us) for r in rows])
    return scale


def rating_query(source: str, scale: int, tariffs: TariffTable) -> str:
    """SELECT call_id and the re-rated fields (region, rate_per_min, rate_per_min_text, billed_s,
    cost, cost_text, currency) of every row of ``source`` (a relation of this package, never
    user input, with the CDR columns).

    The row a call gets depends only on its line, direction, the first ``L`` digits of its
    number (``L`` the longest prefix of the table) and the *epoch* of its start (how many of
    the table's distinct ``valid_from`` are <= it): the distinct keys of those (a few
    thousand, whatever the number of calls) are looked up, by an equality join per prefix
    length, and every call joins its key's row. The epoch is a balanced CASE over the sorted
    ``valid_from`` (a binary search).
    """
    unit = f"CAST({10 ** scale} AS HUGEINT)"
    lengths = sorted({len(r.prefix) for r in tariffs.rows})
    longest = max(lengths, default=0)
    bounds = sorted({r.valid_from_us for r in tariffs.rows})
    probes = " UNION ALL ".join(f"SELECT {int(n)} AS len" for n in lengths) or "SELECT 0 AS len WHERE false"
    epochs = " UNION ALL ".join(f"SELECT {i + 1} AS epoch, {int(b)} AS at_us" for i, b in enumerate(bounds))
    internal = "(line = 'internal' OR direction = 'internal')"
    return f"""
WITH c AS (
    SELECT call_id, line, direction, started_at, talk_s,
           left(CASE WHEN started_at IS NULL OR {internal} THEN ''
                     WHEN number IS NULL OR starts_with(number, 'user:') THEN ''
                     ELSE regexp_replace(number, '[^0-9]', '', 'g') END, {longest}) AS head,
           {_epoch_case("started_us", bounds, 0, len(bounds))} AS epoch
    FROM (SELECT *, CASE WHEN direction = 'outbound' THEN "to" ELSE line_number END AS number,
                 epoch_us(started_at) AS started_us FROM {source})
),
keys AS (
    SELECT DISTINCT line, direction, head, epoch FROM c WHERE head <> '' AND epoch > 0
),
found AS (
    SELECT k.line, k.direction, k.head, k.epoch,
           arg_max({{'region': t.region, 'rate_text': t.rate_text,
                    'rate': TRY_CAST(t.rate_text AS DECIMAL(18,6)), 'rate_units': t.rate_units,
                    'fee_units': t.fee_units, 'increment_s': t.increment_s, 'min_s': t.min_s,
                    'currency': t.currency}}, (t.prefix_len, t.valid_from_us)) AS r
    FROM keys k JOIN ({epochs}) e ON e.epoch = k.epoch
    JOIN ({probes}) p ON length(k.head) >= p.len
    JOIN {TARIFF_TABLE} t ON t.line = k.line AND t.direction = k.direction
     AND t.prefix = left(k.head, p.len) AND t.valid_from_us <= e.at_us
    GROUP BY ALL
),
billed AS (
    SELECT c.call_id, c.started_at, c.line, c.direction, f.r, f.r IS NOT NULL AS found,
           CASE WHEN f.r IS NULL OR c.talk_s IS NULL OR c.talk_s <= 0 THEN CAST(0 AS BIGINT)
                ELSE greatest(f.r.min_s, (CAST(ceil(c.talk_s) AS BIGINT) + f.r.increment_s - 1)
                                         // f.r.increment_s * f.r.increment_s) END AS billed_s
    FROM c LEFT JOIN found f USING (line, direction, head, epoch)
),
priced AS (
    -- half up of (rate * billed + 60 * fee) / 60 to cents, in 10^-scale units:
    -- floor((100 * n + 30 * unit) / (60 * unit)) cents, n >= 0
    SELECT *, CASE WHEN billed_s = 0 THEN CAST(0 AS HUGEINT)
                   ELSE (100 * (r.rate_units * billed_s + 60 * r.fee_units) + 30 * {unit}) // (60 * {unit})
                   END AS cents
    FROM billed
),
costed AS (
    -- cents * 0.01 is exact in DECIMAL; a sum past DECIMAL(18,2) is NULL, as the CDR's
    -- own cost would be, and keeps its spelled-out text
    SELECT *, CAST(TRY_CAST(cents AS DECIMAL(18,0)) * CAST(0.01 AS DECIMAL(3,2)) AS DECIMAL(18,2)) AS cost
    FROM priced
)
SELECT call_id,
       CASE WHEN started_at IS NULL THEN NULL WHEN {internal} THEN 'internal' ELSE r.region END AS region,
       CASE WHEN found THEN r.rate END AS rate_per_min,
       CASE WHEN found THEN r.rate_text END AS rate_per_min_text,
       billed_s,
       cost,
       CASE WHEN cost IS NOT NULL THEN CAST(cost AS VARCHAR) ELSE {cost_text("cents")} END AS cost_text,
       CASE WHEN found THEN r.currency END AS currency
FROM costed
"""


def _epoch_case(at: str, bounds: list[int], low: int, high: int) -> str:
    """SQL for how many of ``bounds`` (sorted) are <= ``at``, knowing it is in [low, high]."""
    if low >= high:
        return str(low)
    middle = (low + high + 1) // 2  # at >= bounds[middle - 1] means at least ``middle``
    return (f"CASE WHEN {at} >= {int(bounds[middle - 1])} THEN {_epoch_case(at, bounds, middle, high)} "
            f"ELSE {_epoch_case(at, bounds, low, middle - 1)} END")


def cost_text(cents: str) -> str:
    """SQL for the CDR's ``cost`` spelling (``12.30``) of a whole number of cents."""
    return f"(CAST({cents} // 100 AS VARCHAR) || '.' || lpad(CAST({cents} % 100 AS VARCHAR), 2, '0'))"
