"""The aiokafka producer under Faust's, for the worker's batched sends (streams/outbox.py).

Faust's ``Topic.send_soon`` wraps each message in a FutureMessage, a buffer and
callbacks, and aiokafka's ``send`` checks metadata and makes a future per
message: on the hot path that cost more than the fold. The outbox builds one
record batch per topic-partition on the producer Faust already started.
"""

from __future__ import annotations


def aiokafka_producer(faust_producer):
    """The started ``AIOKafkaProducer`` of a Faust producer."""
    return faust_producer._ensure_producer()


async def partitions_for(producer, topic: str) -> list[int]:
    """The partitions of ``topic``, waiting for its metadata as ``send`` would."""
    await producer.client._wait_on_metadata(topic)
    return sorted(producer.client.cluster.partitions_for_topic(topic))
