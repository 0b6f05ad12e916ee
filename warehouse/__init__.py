"""The DuckDB warehouse: schema, the one writer (sink), shared queries, export, rebuild."""
