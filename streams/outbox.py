"""Batched sends for the worker's outputs and its hot table's changelog."""

from __future__ import annotations

import asyncio

from aiokafka.partitioner import DefaultPartitioner


class Outbox:
    """Messages of one batch, sent as one Kafka record batch per topic-partition.

    Faust's ``Topic.send_soon`` wraps each message in a FutureMessage, a buffer
    and callbacks, and aiokafka's ``send`` checks topic metadata and creates a
    future per message; on the worker's hot path that cost more than the
    fold itself. Keyed messages are partitioned like any Kafka client does
    (murmur2 of the key), so a call's CDR versions share a partition.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes | None, bytes | None, int | None]] = []
        self._partitioner = DefaultPartitioner()

    def add(self, topic: str, key: bytes | None, value: bytes | None,
            partition: int | None = None) -> None:
        self.messages.append((topic, key, value, partition))

    async def send(self, faust_producer) -> list[asyncio.Future]:
        """Hand every message to the producer; returns the batches' delivery futures."""
        producer = faust_producer._ensure_producer()  # the app's AIOKafkaProducer
        by_partition: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
        counts: dict[str, list[int]] = {}
        for topic, key, value, partition in self.messages:
            if partition is None:
                if topic not in counts:
                    await producer.client._wait_on_metadata(topic)
                    counts[topic] = sorted(producer.client.cluster.partitions_for_topic(topic))
                partition = self._partitioner(key, counts[topic], counts[topic])
            by_partition.setdefault((topic, partition), []).append((key, value))
        self.messages.clear()
        futures = []
        for (topic, partition), records in by_partition.items():
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def flush(self, faust_producer) -> None:
        """Send everything and wait until the broker has it (acks=all)."""
        futures = await self.send(faust_producer)
        if futures:
            await asyncio.gather(*futures)
