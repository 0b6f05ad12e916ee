"""The read side's SQL: one view per table over the files of one manifest.

A table's rows are its base files (deduplicated by the compactor) plus the
delta files the sink wrote since, deduplicated on the fly. For a table where
the newest message wins (``cdrs``, ``alerts``) a delta row hides the base row
of the same key; where the first copy wins (``events``, ``dlq``) a base row
hides a later delta copy. Only the base partitions that the deltas' rows fall
in ("hot" partitions, plus ``none``) take part in that join, so a query over
ten million CDRs pays for the current month only. Each table ``T`` is the
union of ``T__cold`` (untouched base files) and ``T__hot`` (the rest).

A rollup (rollups.py) adds up the compactor's rollup files, the negated
rollup of the base rows the deltas shadow, and the rollup of the deltas:
exact at any moment, and cheap (see :func:`rollup_view`).

While the deltas are few (``MATERIALIZE_DELTA_ROWS``, the case of a live sink between
two major compactions), the winners of the ``cdrs`` deltas and the base rows they shadow
are computed once per manifest into two small in-memory tables (``cdrs__delta_rows``,
``cdrs__shadowed_rows``) that every view reads, instead of in every query: a dashboard
page runs a dozen aggregates on one manifest, and each paid for the deltas' deduplication
and a semi-join over the hot month (half of a 30-day Spend render on a live warehouse).

File lists are SQL string literals built from the manifest (paths the writer
generated, quoted here); no value from a user ever reaches these statements.
"""

from __future__ import annotations

from pathlib import Path

from warehouse import call_index, rollups, schema
from warehouse.layout import DataFile, Manifest

# Largest number of rows in the cdrs delta files whose winners (and the base rows they shadow)
# are materialized per manifest; beyond (a catch-up), the views compute them in each query.
MATERIALIZE_DELTA_ROWS = 200_000
DELTA_ROWS, SHADOWED_ROWS = "cdrs__delta_rows", "cdrs__shadowed_rows"


def literal(text: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def _scan(root: Path, files: list[DataFile], spec: schema.TableSpec | None = None) -> str:
    paths = "[" + ", ".join(literal(str(root / f.path)) for f in files) + "]"
    return schema.scan(spec, paths) if spec is not None else f"read_parquet({paths})"


def _dedup(spec: schema.TableSpec, source: str) -> str:
    return (f"SELECT {schema.select_list(spec)} FROM {source} "
            f"QUALIFY row_number() OVER (PARTITION BY {schema.key_list(spec)} ORDER BY {spec.winner}) = 1")


def _view(name: str, parts: list[str], spec: schema.TableSpec) -> str:
    body = " UNION ALL ".join(parts) if parts else schema.empty_select(spec)
    return f"CREATE OR REPLACE VIEW {schema.quote(name)} AS {body}"


def hot_labels(manifest: Manifest | None, table: str) -> set[str]:
    """Base partitions that the table's delta files may shadow (empty when there are no deltas)."""
    deltas = manifest.table_files(table, "delta") if manifest else ()
    return {label for f in deltas for label in f.labels} | {"none"} if deltas else set()


def materialized(manifest: Manifest | None) -> bool:
    """True when the cdrs deltas of ``manifest`` are few enough to be materialized per manifest."""
    deltas = manifest.table_files("cdrs", "delta") if manifest else ()
    return bool(deltas) and sum(f.rows for f in deltas) <= MATERIALIZE_DELTA_ROWS


def live_tables(root: Path, manifest: Manifest | None, materialize: bool) -> list[str]:
    """CREATE TABLE statements of the cdrs deltas' winners and the base rows they shadow (empty
    tables dropped when not ``materialize``d); run before the views, which read them."""
    if not materialize or manifest is None:
        return [f"DROP TABLE IF EXISTS {DELTA_ROWS}", f"DROP TABLE IF EXISTS {SHADOWED_ROWS}"]
    spec = schema.TABLES["cdrs"]
    statements = [f"CREATE OR REPLACE TABLE {DELTA_ROWS} AS "
                  f"{_dedup(spec, _scan(root, list(manifest.table_files('cdrs', 'delta')), spec))}"]
    hot = hot_labels(manifest, "cdrs")
    base = [f for f in manifest.table_files("cdrs", "base") if f.partition in hot]
    rows = (f"SELECT b.* FROM {_scan(root, base)} b SEMI JOIN {DELTA_ROWS} d USING (call_id)" if base else
            f"SELECT * FROM ({schema.empty_select(spec)}) WHERE false")
    statements.append(f"CREATE OR REPLACE TABLE {SHADOWED_ROWS} AS {rows}")
    return statements


def table_view(root: Path, spec: schema.TableSpec, manifest: Manifest | None,
               materialize: bool = False) -> list[str]:
    """CREATE VIEW statements of one table: ``T__delta``, ``T__cold``, ``T__hot``, ``T``."""
    deltas = list(manifest.table_files(spec.name, "delta")) if manifest else []
    base = list(manifest.table_files(spec.name, "base")) if manifest else []
    hot = hot_labels(manifest, spec.name)
    cold = [f for f in base if f.partition not in hot]
    warm = [f for f in base if f.partition in hot]
    cols, keys = schema.select_list(spec), schema.key_list(spec)
    name = spec.name
    statements, hot_parts = [], []
    if deltas:
        delta_view = schema.quote(f"{name}__delta")
        winners = f"SELECT {cols} FROM {DELTA_ROWS}" if materialize and name == "cdrs" else \
            _dedup(spec, _scan(root, deltas, spec))
        statements.append(f"CREATE OR REPLACE VIEW {delta_view} AS {winners}")
        if not warm:
            hot_parts.append(f"SELECT {cols} FROM {delta_view}")
        elif spec.newest_wins:
            hot_parts.append(f"SELECT {schema.select_list(spec, 'b')} FROM {_scan(root, warm, spec)} b "
                             f"ANTI JOIN {delta_view} d USING ({keys})")
            hot_parts.append(f"SELECT {cols} FROM {delta_view}")
        else:
            hot_parts.append(f"SELECT {cols} FROM {_scan(root, warm, spec)}")
            hot_parts.append(f"SELECT {schema.select_list(spec, 'd')} FROM {delta_view} d "
                             f"ANTI JOIN {_scan(root, warm, spec)} b USING ({keys})")
    else:  # always defined, so point lookups can ask the deltas first (queries.cdr_by_id)
        statements.append(_view(f"{name}__delta", [], spec))
    statements.append(_view(f"{name}__base", [f"SELECT {cols} FROM {_scan(root, base, spec)}"] if base else [], spec))
    statements.append(_view(f"{name}__cold", [f"SELECT {cols} FROM {_scan(root, cold, spec)}"] if cold else [], spec))
    statements.append(_view(f"{name}__hot", hot_parts, spec))
    statements.append(_view(name, [f"SELECT {cols} FROM {schema.quote(name + '__cold')}",
                                   f"SELECT {cols} FROM {schema.quote(name + '__hot')}"], spec))
    return statements


def rollup_view(root: Path, manifest: Manifest | None, rollup: rollups.Rollup, materialize: bool = False) -> str:
    """CREATE VIEW of one rollup, exact at any moment, from additive pieces.

    Every measure is a count or a sum, so the stored rollup of every base partition,
    minus the rollup of the base rows the deltas shadow (a semi-join on call_id over
    the hot partitions only), plus the rollup of the delta winners, is the rollup of
    ``cdrs``. Queries sum these rows again; they never filter on a measure.
    """
    files = manifest.table_files("cdrs", "base") if manifest else ()
    rolled = {f.partition: f for f in (manifest.table_files(rollup.name, "base") if manifest else ())}
    hot = hot_labels(manifest, "cdrs")
    parts = []
    stored = [rolled[f.partition] for f in files if f.partition in rolled]
    if stored:
        parts.append(f"SELECT {schema.select_list(rollup.spec)} FROM {_scan(root, stored)}")
    unrolled = [f for f in files if f.partition not in rolled]  # a rollup never written: use the calls
    if unrolled:
        rows = f"(SELECT {schema.select_list(schema.TABLES['cdrs'])} FROM {_scan(root, unrolled)})"
        if hot:
            rows = f"(SELECT r.* FROM {rows} r ANTI JOIN cdrs__delta d USING (call_id))"
        parts.append(rollup.select(rows))
    if hot:
        hot_files = [f for f in files if f.partition in hot]
        shadowed = [f for f in hot_files if f.partition in rolled]
        if shadowed:
            dims = ", ".join(schema.quote(n) for n in rollup.dimensions)
            negated = ", ".join(f"-{schema.quote(n)} AS {schema.quote(n)}" for n in rollup.measure_names)
            if materialize and len(shadowed) == len(hot_files):  # every hot partition rolled up
                rows = SHADOWED_ROWS
            else:
                rows = f"(SELECT b.* FROM {_scan(root, shadowed)} b SEMI JOIN cdrs__delta d USING (call_id))"
            parts.append(f"SELECT {dims}, {negated} FROM ({rollup.select(rows)})")
        parts.append(rollup.select("cdrs__delta"))
    return _view(rollup.name, parts, rollup.spec)


def index_view(root: Path, manifest: Manifest | None) -> str:
    """CREATE VIEW ``cdrs_ids``: (call_id, started_day) of every base cdrs row (call_index.py).

    Stored index files where a partition has one; the base file itself where it has not.
    """
    files = manifest.table_files("cdrs", "base") if manifest else ()
    indexed = {f.partition: f for f in (manifest.table_files(call_index.NAME, "base") if manifest else ())}
    parts = []
    stored = [indexed[f.partition] for f in files if f.partition in indexed]
    if stored:
        parts.append(f"SELECT call_id, started_day FROM {_scan(root, stored)}")
    unindexed = [f for f in files if f.partition not in indexed]
    if unindexed:
        parts.append(call_index.select(_scan(root, unindexed)))
    return _view(call_index.NAME, parts, call_index.SPEC)


def all_views(root: Path, manifest: Manifest | None, materialize: bool = True) -> list[str]:
    """CREATE VIEW statements for every table of the warehouse, then the rollups and the index,
    after the tables of the live deltas when they are few (materialized()) and ``materialize``."""
    live = materialize and materialized(manifest)
    statements = live_tables(root, manifest, live)
    statements += [stmt for spec in schema.TABLES.values() for stmt in table_view(root, spec, manifest, live)]
    return statements + [rollup_view(root, manifest, rollup, live) for rollup in rollups.ROLLUPS] + \
        [index_view(root, manifest)]
