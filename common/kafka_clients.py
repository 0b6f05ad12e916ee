"""What every Kafka client of the project shares: codecs, isolation level, compression.

- **Codecs.** A consumer must decompress whatever a producer chose; Kafka has
  gzip, snappy, lz4 and zstd. aiokafka (the worker) and kafka-python (sink,
  rebuild, simulator) each need their own libraries for all but gzip; without
  one, the first such batch kills the reader, which restarts onto the same
  batch (a crash loop). :func:`require_codecs` checks them at start-up instead,
  with one line naming what is missing.
- **Isolation.** Every consumer reads with ``isolation_level=read_committed``:
  records of aborted transactions are never seen, and an open transaction is
  read only once committed. End offsets are then the *last stable offset*, so
  "read to the end" stops before an open transaction instead of waiting on it.
- **Compression** of the project's own producers (worker outputs, simulator):
  the ``CALLSTREAM_COMPRESSION`` setting, ``none`` by default.
- **Durability.** Every producer waits for all in-sync replicas (``acks=all``) and
  is idempotent: a retry after a broker failed over (a lost response, a leader
  that moved) is de-duplicated by the broker instead of being written twice, and
  with ``min.insync.replicas`` 2 an acknowledged record is on two brokers.
"""

from __future__ import annotations

from typing import Any

from common.config import CODECS, Settings
from common.errors import CliError

__all__ = ["CODECS", "ISOLATION_LEVEL", "compression_type", "consumer_options", "librdkafka_options", "missing_codecs",
           "producer_options", "require_codecs"]

ISOLATION_LEVEL = "read_committed"

# codec -> (client, the package that brings it), for both clients; gzip is in the standard library.
_LIBRARIES = {
    "aiokafka": {"snappy": "cramjam", "lz4": "cramjam", "zstd": "cramjam"},
    "kafka-python": {"snappy": "python-snappy", "lz4": "lz4", "zstd": "zstandard"},
}


def missing_codecs() -> list[str]:
    """Codecs a client of the project cannot decompress, as "codec for client (package)"."""
    import aiokafka.codec
    import kafka.codec

    modules = {"aiokafka": aiokafka.codec, "kafka-python": kafka.codec}
    missing = []
    for client, libraries in _LIBRARIES.items():
        for codec, package in libraries.items():
            if not getattr(modules[client], f"has_{codec}")():
                missing.append(f"{codec} for {client} ({package})")
    return missing


def require_codecs(process: str) -> None:
    """A one-line CliError when a codec library is missing, before ``process`` reads anything."""
    missing = missing_codecs()
    if missing:
        raise CliError(f"{process}: cannot read compressed Kafka batches: missing {', '.join(missing)}; "
                       "install the project's dependencies (pyproject.toml)")


def consumer_options(settings: Settings) -> dict[str, Any]:
    """Options of every kafka-python consumer of the project: security, committed data only."""
    return {"isolation_level": ISOLATION_LEVEL, **settings.kafka_client_options()}


def librdkafka_options(settings: Settings) -> dict[str, Any]:
    """The project's client options (security, committed data only) in librdkafka's spelling."""
    options: dict[str, Any] = {"bootstrap.servers": settings.bootstrap, "isolation.level": ISOLATION_LEVEL}
    for ours, theirs in _LIBRDKAFKA_NAMES.items():
        value = settings.kafka_client_options().get(ours)
        if value is not None:
            options[theirs] = value
    return options


_LIBRDKAFKA_NAMES = {"security_protocol": "security.protocol", "sasl_mechanism": "sasl.mechanism",
                     "sasl_plain_username": "sasl.username", "sasl_plain_password": "sasl.password",
                     "ssl_cafile": "ssl.ca.location", "ssl_certfile": "ssl.certificate.location",
                     "ssl_keyfile": "ssl.key.location"}


def producer_options(settings: Settings) -> dict[str, Any]:
    """Options of every kafka-python producer of the project: security, acks=all, idempotence."""
    return {"bootstrap_servers": settings.bootstrap, "acks": "all", "enable_idempotence": True,
            **settings.kafka_client_options()}


def compression_type(codec: str) -> str | None:
    """The producer's ``compression_type`` for a codec name (``none`` is None in both clients)."""
    return None if codec == "none" else codec
