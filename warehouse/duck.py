"""DuckDB connections of the warehouse, configured the same way in every process.

Every process (sink, compactor, dashboard, export, benchmarks) opens DuckDB
through :func:`connect`, so all of them run the one pinned DuckDB version
(see ``pyproject.toml``) with UTC as the session time zone: ``TIMESTAMPTZ``
values print and truncate to days in UTC whatever the host's ``TZ``.
"""

from __future__ import annotations

import duckdb


def connect(*, memory_limit: str | None = None, threads: int | None = None,
            temp_directory: str | None = None) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB database whose every cursor works in UTC."""
    con = duckdb.connect()
    # GLOBAL so that cursors (one per thread) inherit it; ICU is built into the wheel.
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    if memory_limit:
        con.execute("SET GLOBAL memory_limit = ?", [memory_limit])
    if threads:
        con.execute("SET GLOBAL threads = ?", [threads])
    if temp_directory:
        con.execute("SET GLOBAL temp_directory = ?", [temp_directory])
    return con
