"""A pre-filled events topic that the workers see all at once, when every one of them is in the group.

Workers started together do not join together on a loaded 2-core machine
(a Python worker's start-up took up to 45 s here): on a topic they can read
at once, the first one to join did much of the work alone, and "three
workers" measured two. :class:`GatedCopy` copies the pre-filled topic into
the run's own events topic *behind* an open transaction: one transactional
record heads each partition, and a ``read_committed`` consumer (every
consumer of the project) reads nothing past an open transaction. Once the
group is stable with all its members, :meth:`GatedCopy.release` aborts that
transaction and every event becomes readable at the same moment; the
aborted records are skipped like any aborted transaction's (their offsets
count among the committed ones: two per partition).
"""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from common.kafka_clients import ISOLATION_LEVEL


class GatedCopy:
    """``source`` copied partition by partition into ``target``, unreadable until :meth:`release`."""

    def __init__(self, bootstrap: str, source: str, target: str, partitions: int) -> None:
        self.bootstrap, self.source, self.target, self.partitions = bootstrap, source, target, partitions
        self.loop = asyncio.new_event_loop()
        self.gate: AIOKafkaProducer | None = None
        try:
            self.copied = self.loop.run_until_complete(self._open_and_copy())
        except BaseException:
            self.close()
            raise

    async def _open_and_copy(self) -> int:
        # Long enough for the workers to start on a loaded machine (the broker's maximum: 15 min).
        self.gate = AIOKafkaProducer(bootstrap_servers=self.bootstrap, transactional_id=f"gate-{uuid.uuid4().hex}",
                                     enable_idempotence=True, acks="all", transaction_timeout_ms=600_000)
        await self.gate.start()
        await self.gate.begin_transaction()
        for partition in range(self.partitions):
            await self.gate.send_and_wait(self.target, b"gate", key=b"gate", partition=partition)
        return await self._copy()

    async def _copy(self) -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    isolation_level=ISOLATION_LEVEL, max_partition_fetch_bytes=8 << 20,
                                    fetch_max_bytes=64 << 20)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                    max_request_size=8 << 20, max_batch_size=1 << 20)
        await consumer.start()
        await producer.start()
        try:
            parts = [TopicPartition(self.source, p) for p in range(self.partitions)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            copied, futures = 0, []
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for tp, records in (await consumer.getmany(timeout_ms=1000, max_records=50_000)).items():
                    records = [r for r in records if r.offset < ends[tp]]
                    futures += await self._send(producer, tp.partition, records)
                    copied += len(records)
            await asyncio.gather(*futures)
            return copied
        finally:
            await producer.stop()
            await consumer.stop()

    async def _send(self, producer: AIOKafkaProducer, partition: int, records: list) -> list:
        """The records as full batches of ``partition`` (the same partition as in the source)."""
        futures, batch = [], producer.create_batch()
        for record in records:
            if batch.append(key=record.key, value=record.value, timestamp=record.timestamp) is None:
                futures.append(await producer.send_batch(batch, self.target, partition=partition))
                batch = producer.create_batch()
                batch.append(key=record.key, value=record.value, timestamp=record.timestamp)
        if batch.record_count():
            futures.append(await producer.send_batch(batch, self.target, partition=partition))
        return futures

    def release(self) -> None:
        """Abort the gate's transaction: every copied event becomes readable now."""
        self.loop.run_until_complete(self._release())

    async def _release(self) -> None:
        if self.gate is not None:
            await self.gate.abort_transaction()
            await self.gate.stop()
            self.gate = None

    def close(self) -> None:
        if self.gate is not None:
            self.release()
        self.loop.close()

