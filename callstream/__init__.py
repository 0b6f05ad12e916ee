"""callstream: event-sourced call analytics (Kafka -> faust -> DuckDB -> Dash)."""

__version__ = "0.1.0"
