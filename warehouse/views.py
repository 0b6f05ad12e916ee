"""The read side's SQL: one view per table over the files of one manifest.

A table's rows are its base files (deduplicated by the compactor) plus the
delta files the sink wrote since, deduplicated on the fly. For a table where
the newest message wins (``cdrs``, ``alerts``) a delta row hides the base row
of the same key; where the first copy wins (``events``, ``dlq``) a base row
hides a later delta copy. Only the base partitions that the deltas' rows fall
in ("hot" partitions, plus ``none``) take part in that join, so a query over
ten million CDRs pays for the current month only.

File lists are SQL string literals built from the manifest (paths the writer
generated, quoted here); no value from a user ever reaches these statements.
"""

from __future__ import annotations

from pathlib import Path

from warehouse import schema
from warehouse.layout import DataFile, Manifest

TABLE_NAMES = tuple(schema.TABLES)


def literal(text: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def _scan(root: Path, files: list[DataFile]) -> str:
    paths = ", ".join(literal(str(root / f.path)) for f in files)
    return f"read_parquet([{paths}])"


def _dedup(spec: schema.TableSpec, source: str) -> str:
    return (f"SELECT {schema.select_list(spec)} FROM {source} "
            f"QUALIFY row_number() OVER (PARTITION BY {schema.key_list(spec)} ORDER BY {spec.winner}) = 1")


def table_view(root: Path, spec: schema.TableSpec, manifest: Manifest | None) -> list[str]:
    """CREATE VIEW statements for one table (its delta view first, then the table)."""
    files = list(manifest.table_files(spec.name)) if manifest else []
    deltas = [f for f in files if f.kind == "delta"]
    base = [f for f in files if f.kind == "base"]
    hot = {label for f in deltas for label in f.labels} | {"none"} if deltas else set()
    cold = [f for f in base if f.partition not in hot]
    warm = [f for f in base if f.partition in hot]
    cols = schema.select_list(spec)
    keys = schema.key_list(spec)
    statements, parts = [], []
    if cold:
        parts.append(f"SELECT {cols} FROM {_scan(root, cold)}")
    if deltas:
        delta_view = schema.quote(f"{spec.name}__delta")
        statements.append(f"CREATE OR REPLACE VIEW {delta_view} AS {_dedup(spec, _scan(root, deltas))}")
        if not warm:
            parts.append(f"SELECT {cols} FROM {delta_view}")
        elif spec.newest_wins:
            parts.append(f"SELECT {schema.select_list(spec, 'b')} FROM {_scan(root, warm)} b "
                         f"ANTI JOIN {delta_view} d USING ({keys})")
            parts.append(f"SELECT {cols} FROM {delta_view}")
        else:
            parts.append(f"SELECT {cols} FROM {_scan(root, warm)}")
            parts.append(f"SELECT {schema.select_list(spec, 'd')} FROM {delta_view} d "
                         f"ANTI JOIN {_scan(root, warm)} b USING ({keys})")
    body = " UNION ALL ".join(parts) if parts else schema.empty_select(spec)
    statements.append(f"CREATE OR REPLACE VIEW {schema.quote(spec.name)} AS {body}")
    return statements


def all_views(root: Path, manifest: Manifest | None) -> list[str]:
    """CREATE VIEW statements for every table of the warehouse."""
    return [stmt for spec in schema.TABLES.values() for stmt in table_view(root, spec, manifest)]
