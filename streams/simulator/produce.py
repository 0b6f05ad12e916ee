"""The Kafka side of the simulator: pacing, and a thin producer over the pure engine.

The producer is kafka-python with ``acks="all"`` and idempotence, so a
retried batch is never written twice (duplicates are only the ones the
simulator sends on purpose). Partitions are computed here with Kafka's default
murmur2 partitioner, once per call instead of once per event.
"""

from __future__ import annotations

from typing import Any

from common.config import Settings
from common.errors import CliError
from common.kafka_clients import compression_type

# Room for the simulator's own too_large messages (just over 1 MiB).
MAX_REQUEST_BYTES = 4 * 1024 * 1024
_PARTITION_CACHE = 100_000


def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's default partition for a keyed message (murmur2, as the Java client)."""
    from kafka.partitioner.default import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


def topic_limits(settings: Settings, topic: str) -> tuple[int, int]:
    """(partitions, max.message.bytes) of ``topic``; a clear error if Kafka or the topic is missing."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, bootstrap_timeout_ms=10_000,
                                 request_timeout_ms=15_000, **settings.kafka_client_options())
    except (KafkaError, OSError) as exc:
        raise CliError(f"cannot reach Kafka at {settings.bootstrap}: {exc}") from None
    try:
        described = admin.describe_topics([topic])
        partitions = described[0]["partitions"] if described else []
        if not partitions:
            raise CliError(f"topic {topic} does not exist (create it with: callstream topics create)")
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                         configs=["max.message.bytes"])],
                                         config_filter="all")
        limit = int(configs["topic"][topic]["max.message.bytes"]["value"])
    except (KafkaError, OSError, KeyError, TypeError, ValueError) as exc:
        raise CliError(f"cannot describe topic {topic}: {exc}") from None
    finally:
        admin.close()
    return len(partitions), limit


class KafkaSink:
    """Sends simulator messages to one topic; counts and keeps the first delivery error."""

    def __init__(self, settings: Settings, topic: str, compression: str = "none",
                 linger_ms: int = 100, batch_size: int = 512 * 1024,
                 largest_value: int | None = None) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self._topic = topic
        self._partitions, limit = topic_limits(settings, topic)
        if largest_value is not None and limit < largest_value:
            # The broker refuses a whole batch for one over-size message: innocent events would be lost.
            raise CliError(f"topic {topic} takes messages up to {limit} bytes, but --malformed sends "
                           f"values over 1 MiB: set its max.message.bytes to 2 MiB "
                           f"(callstream topics create does)", exit_code=2)
        self._cache: dict[bytes, int] = {}
        self.failed = 0
        self.first_error: str | None = None
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True,
                linger_ms=linger_ms, batch_size=batch_size, max_request_size=MAX_REQUEST_BYTES,
                compression_type=compression_type(compression),
                bootstrap_timeout_ms=10_000, **settings.kafka_client_options())
        except (KafkaError, OSError) as exc:
            raise CliError(f"cannot start a producer on {settings.bootstrap}: {exc}") from None
        except RuntimeError as exc:  # kafka-python: the compression library is missing
            raise CliError(f"--compression {compression}: {exc}", exit_code=2) from None
        self._send = self._producer.send

    def send(self, key: bytes, value: bytes) -> None:
        """Queue one message (key = call_id) for its murmur2 partition."""
        partition = self._cache.get(key)
        if partition is None:
            if len(self._cache) >= _PARTITION_CACHE:
                self._cache.clear()
            partition = self._cache[key] = partition_of(key, self._partitions)
        self._send(self._topic, value=value, key=key, partition=partition) \
            .add_errback(self._on_error)

    def _on_error(self, exc: Any) -> None:
        self.failed += 1
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {exc}"

    def close(self, timeout_s: float = 120.0) -> None:
        """Wait for every queued message to be acknowledged, then close."""
        self._producer.flush(timeout=timeout_s)
        self._producer.close(timeout=timeout_s)
