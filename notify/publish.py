"""Publishing an action (acknowledgement, silence) on the actions topic, from the CLI or the dashboard."""

from __future__ import annotations

from common.config import Settings
from common.errors import CliError


class Publisher:
    """A producer of actions, kept open (the dashboard publishes many over its life)."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaProducer

        self.settings = settings
        self.topic = settings.notify_topics[1]
        self._producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True,
                                       request_timeout_ms=15_000, max_block_ms=15_000,
                                       **settings.kafka_client_options())

    def publish(self, key: bytes, value: bytes, timeout_s: float = 15.0) -> None:
        """Send one action and wait until the broker stored it."""
        self._producer.send(self.topic, key=key, value=value).get(timeout=timeout_s)

    def close(self) -> None:
        self._producer.close(5)


def publish_action(settings: Settings, key: bytes, value: bytes) -> None:
    """Create notify's topics if needed, then store one action (CliError when Kafka cannot be reached)."""
    from kafka.errors import KafkaError

    from notify.topics import ensure

    ensure(settings)
    try:
        publisher = Publisher(settings)
    except (KafkaError, OSError) as exc:
        raise CliError(f"cannot reach Kafka at {settings.bootstrap}: {exc}", exit_code=1) from None
    try:
        publisher.publish(key, value)
    except KafkaError as exc:
        raise CliError(f"the action was not stored: {exc}", exit_code=1) from None
    finally:
        publisher.close()
