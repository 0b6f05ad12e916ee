"""The warehouse tables: typed columns, identity, winner rule, layout.

Every table is declared once here; the sink, the compactor, the readers and
the benchmarks all derive their SQL from these declarations. The SQL snippets
(``winner``, ``partition``, ``sort``) are constants of this module, never user
input.

Identity and winner rules (the reason re-consumption and ``kill -9`` leave the
same tables):

- ``cdrs``: one row per ``call_id``; the highest ``version`` wins, then the
  highest Kafka offset (CDRs of one call share a partition: the key is call_id).
- ``alerts``: one row per ``alert_id``; the latest message (highest offset) wins.
- ``events``: one row per ``event_id``; the first copy wins (contract).
- ``dlq``: one row per rejected source message (topic, partition, offset): a
  worker that rejects the same message twice after a restart counts it once.
- ``rejects``: one row per message the sink itself refused (it breaks the contract
  or cannot be read: warehouse/rejects.py).
"""

from __future__ import annotations

from dataclasses import dataclass

# Text kept next to a DECIMAL where the DECIMAL would print differently from
# the CDR ("1.50" as DECIMAL(18,6) prints 1.500000): the billing CSV prints it.
CDR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("call_id", "VARCHAR"),
    ("portal_id", "VARCHAR"),
    ("version", "BIGINT"),
    ("direction", "VARCHAR"),
    ("line", "VARCHAR"),
    ("from", "VARCHAR"),
    ("to", "VARCHAR"),
    ("line_number", "VARCHAR"),
    ("shown_number", "VARCHAR"),
    ("extranet", "BOOLEAN"),
    ("user_id", "VARCHAR"),
    ("started_at", "TIMESTAMPTZ"),
    ("answered_at", "TIMESTAMPTZ"),
    ("ended_at", "TIMESTAMPTZ"),
    ("ring_s", "DECIMAL(18,3)"),
    ("talk_s", "DECIMAL(18,3)"),
    ("duration_s", "DECIMAL(18,3)"),
    ("status", "VARCHAR"),
    ("hangup_cause", "VARCHAR"),
    ("queue_attempts", "INTEGER"),
    ("forwarded_to", "VARCHAR"),
    ("controller", "VARCHAR"),
    ("controller_result", "VARCHAR"),
    ("region", "VARCHAR"),
    ("rate_per_min", "DECIMAL(18,6)"),
    ("rate_per_min_text", "VARCHAR"),
    ("billed_s", "BIGINT"),
    ("cost", "DECIMAL(18,2)"),
    ("cost_text", "VARCHAR"),
    ("currency", "VARCHAR"),
    ("recording_urls", "VARCHAR[]"),
    ("recording_bytes", "BIGINT"),
    ("recording_s", "DECIMAL(18,3)"),
    ("events", "INTEGER"),
    # The UTC day of started_at, stored so that per-day charts group on a DATE
    # instead of converting every TIMESTAMPTZ through the time-zone library.
    ("started_day", "DATE"),
    ("kafka_partition", "INTEGER"),
    ("kafka_offset", "BIGINT"),
)

ALERT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("alert_id", "VARCHAR"),
    ("type", "VARCHAR"),
    ("portal_id", "VARCHAR"),
    ("call_id", "VARCHAR"),
    ("ts", "TIMESTAMPTZ"),
    ("state", "VARCHAR"),  # detail.state when present (controller_outage: open/resolved)
    ("detail", "VARCHAR"),  # the detail object as JSON text
    ("kafka_partition", "INTEGER"),
    ("kafka_offset", "BIGINT"),
)

EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "VARCHAR"),
    ("call_id", "VARCHAR"),
    ("portal_id", "VARCHAR"),
    ("type", "VARCHAR"),
    ("source", "VARCHAR"),
    ("node", "VARCHAR"),
    ("ts", "TIMESTAMPTZ"),
    ("data", "VARCHAR"),  # the data payload as canonical JSON text (streams.domain.wire)
    ("kafka_partition", "INTEGER"),
    ("kafka_offset", "BIGINT"),
)

DLQ_COLUMNS: tuple[tuple[str, str], ...] = (
    ("reason", "VARCHAR"),
    ("error", "VARCHAR"),
    ("src_topic", "VARCHAR"),
    ("src_partition", "INTEGER"),
    ("src_offset", "BIGINT"),
    ("raw_excerpt", "VARCHAR"),  # the first characters of raw (or raw_b64)
    ("ts", "TIMESTAMPTZ"),  # Kafka timestamp of the DLQ message
    ("kafka_partition", "INTEGER"),
    ("kafka_offset", "BIGINT"),
)

REJECT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("topic", "VARCHAR"),
    ("kafka_partition", "INTEGER"),
    ("kafka_offset", "BIGINT"),
    ("ts", "TIMESTAMPTZ"),  # Kafka timestamp of the message
    ("reason", "VARCHAR"),  # DLQ-style: bad_field:<name>, missing_field:<name>, not_json, bad_key, ...
    ("error", "VARCHAR"),
    ("raw_excerpt", "VARCHAR"),
    ("raw", "BLOB"),  # the value's first 64 KiB (warehouse/rejects.py)
    ("raw_bytes", "BIGINT"),  # the value's full length (null for a tombstone)
)


@dataclass(frozen=True)
class TableSpec:
    """One warehouse table: columns, identity key, winner order and file layout."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    winner: str  # ORDER BY of the duplicates of one key: the first row wins
    newest_wins: bool  # a newer delta row replaces the base row (else the base row stays)
    partition: str  # SQL label of a row's base partition (one base file per label)
    sort: str  # ORDER BY inside every file
    time_column: str  # newest value is the table's data time (freshness)
    row_group_size: int | None = None  # Parquet row group size; None: DuckDB's default
    # Columns added after warehouses were written: the table's files are then read by
    # column name, and a file without one of them reads it as NULL (see :func:`scan`).
    added_columns: tuple[str, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in table order."""
        return tuple(name for name, _ in self.columns)


_MONTH = "strftime({col}, '%Y-%m')"
_DAY = "strftime({col}, '%Y-%m-%d')"

TABLES: dict[str, TableSpec] = {
    "cdrs": TableSpec(
        "cdrs", CDR_COLUMNS, ("call_id",),
        winner="version DESC, kafka_offset DESC, kafka_partition DESC", newest_wins=True,
        # Incomplete calls without call.started have no started_at: their own partition.
        partition="coalesce(" + _MONTH.format(col="started_at") + ", 'none')",
        sort="started_at NULLS LAST, call_id",
        time_column="coalesce(ended_at, started_at)",
    ),
    "alerts": TableSpec(
        "alerts", ALERT_COLUMNS, ("alert_id",),
        winner="kafka_offset DESC, kafka_partition DESC", newest_wins=True,
        partition="'all'", sort="ts, alert_id", time_column="ts",
    ),
    "events": TableSpec(
        "events", EVENT_COLUMNS, ("event_id",),
        winner="kafka_partition, kafka_offset", newest_wins=False,
        # Daily files sorted by call_id: a timeline lookup skips row groups by min/max.
        partition=_DAY.format(col="ts"), sort="call_id, ts, event_id", time_column="ts",
    ),
    "dlq": TableSpec(
        "dlq", DLQ_COLUMNS, ("src_topic", "src_partition", "src_offset"),
        winner="kafka_partition, kafka_offset", newest_wins=False,
        partition="'all'", sort="ts, kafka_partition, kafka_offset", time_column="ts",
    ),
    "rejects": TableSpec(
        "rejects", REJECT_COLUMNS, ("topic", "kafka_partition", "kafka_offset"),
        winner="ts", newest_wins=False,
        partition="'all'", sort="topic, kafka_partition, kafka_offset", time_column="ts",
        added_columns=("reason", "raw", "raw_bytes"),  # with the sink's contract checks
    ),
}


def quote(identifier: str) -> str:
    """A DuckDB identifier in double quotes (``from`` and ``to`` are keywords)."""
    return '"' + identifier.replace('"', '""') + '"'


def select_list(spec: TableSpec, alias: str | None = None) -> str:
    """The table's columns, quoted, in order (optionally qualified by ``alias``)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + quote(name) for name in spec.column_names)


def empty_select(spec: TableSpec) -> str:
    """A query with the table's typed columns and no rows."""
    casts = ", ".join(f"CAST(NULL AS {sql_type}) AS {quote(name)}" for name, sql_type in spec.columns)
    return f"SELECT {casts} WHERE false"


def scan(spec: TableSpec, files: str, *, filename: bool = False) -> str:
    """A FROM item reading the Parquet files ``files`` (a SQL list literal) as rows of ``spec``.

    For a table with ``added_columns``, an empty typed row set united BY NAME with the
    files: a file written before a column existed reads it as NULL, whatever the others hold.
    """
    options = ", filename = true" if filename else ""
    if not spec.added_columns:
        return f"read_parquet({files}{options})"
    return (f"({empty_select(spec)} UNION ALL BY NAME "
            f"SELECT * FROM read_parquet({files}, union_by_name = true{options}))")


def key_list(spec: TableSpec) -> str:
    """The identity columns, quoted, comma-separated."""
    return ", ".join(quote(name) for name in spec.key)
