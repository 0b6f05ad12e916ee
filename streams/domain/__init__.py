"""The pure domain core: events, validation, CDR assembly, rating, alert rules.

Nothing in this package imports Kafka, Faust or DuckDB: it is plain functions
over plain data, tested without a broker.
"""
