"""The aiokafka producer under Faust's: idempotent, and reached for the worker's batched sends.

Faust's ``Topic.send_soon`` wraps each message in a FutureMessage, a buffer and
callbacks, and aiokafka's ``send`` checks metadata and makes a future per
message: on the hot path that cost more than the fold. The outbox builds one
record batch per topic-partition on the producer Faust already started.

Faust asks aiokafka for an idempotent producer only inside its own transactions
(``processing_guarantee="exactly_once"``), which the worker does not use (docs/worker.md,
"Exactly-once effect without Kafka transactions"). Without idempotence a batch
whose acknowledgement was lost — a leader killed after writing it, a connection
cut during a broker failover — is sent again and written twice; with it the
broker recognises the retry's producer id and sequence numbers and keeps one
copy. :class:`IdempotentProducer` is Faust's producer with it (``create_app``
installs it on the app's transport).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as driver


class IdempotentProducer(driver.Producer):
    """Faust's aiokafka producer with ``enable_idempotence`` (which requires ``acks=all``)."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


def aiokafka_producer(faust_producer):
    """The started ``AIOKafkaProducer`` of a Faust producer."""
    return faust_producer._ensure_producer()


async def partitions_for(producer, topic: str) -> list[int]:
    """The partitions of ``topic``, waiting for its metadata as ``send`` would."""
    await producer.client._wait_on_metadata(topic)
    return sorted(producer.client.cluster.partitions_for_topic(topic))
