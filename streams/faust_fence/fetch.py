"""The worker's aiokafka consumer thread: committed data only, and where each fetch starts and ends.

Faust runs aiokafka in a thread of its own and asks it for records a fetch at
a time. This thread

- sets ``isolation_level=read_committed`` on the consumer Faust creates: Faust
  passes it only with ``processing_guarantee="exactly_once"`` (its own
  transactions), and the worker is at-least-once, so without this it read the
  records of aborted transactions (upstream fix: a Faust setting for the
  consumer's isolation level, independent of the processing guarantee);
- returns each fetch as a :class:`Fetch`, which also tells, per partition,
  the consumer's position before and after the fetch. A read_committed
  consumer steps over offsets that hold no record for us — transaction
  markers, aborted transactions — and the fetch loop (``streams/faust_fence/transport.py``)
  must tell such a jump from records it fetched and did not deliver.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as driver

from common.kafka_clients import ISOLATION_LEVEL


class Fetch(dict):
    """The records of one fetch (tp -> records), with where each partition's read started and ended.

    ``starts[tp]``: the position before the fetch; its records start there, or later
    only past offsets without a record for us (markers, aborted, compacted away).
    ``ends[tp]``: the position after it, past such offsets that follow its last record
    (a partition may have moved on without returning any record).
    """

    def __init__(self, records: dict, starts: dict | None = None, ends: dict | None = None) -> None:
        super().__init__(records)
        self.starts = starts or {}
        self.ends = ends or {}


def _positions(consumer: Any, partitions: Any) -> dict:
    """tp -> the consumer's position, for partitions that have one (read as Faust does, from the fetcher)."""
    subscription = consumer._fetcher._subscriptions.subscription
    assignment = subscription.assignment if subscription is not None else None
    positions = {}
    if assignment is not None:
        for tp in partitions or ():
            state = assignment.state_value(tp)
            if state is not None and state.has_valid_position:
                positions[tp] = state.position
    return positions


class ConsumerThread(driver.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, reading committed data, fetches as :class:`Fetch`."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka builds its fetcher from this attribute when the consumer starts.
        if getattr(consumer, "_isolation_level", None) is None:
            raise RuntimeError("aiokafka changed: cannot set the consumer's isolation level")
        consumer._isolation_level = ISOLATION_LEVEL
        return consumer

    async def _fetch_records(self, consumer: Any, active_partitions: Any,
                             timeout: float | None = None, max_records: int | None = None) -> Fetch:
        # Before: a seek while the fetch waits for data moves the position, but every seek
        # also tells the fetch loop where reading goes on, so a stale start errs on the side
        # of reading again. After: exact, nothing runs between the drain and this line.
        starts = _positions(consumer, active_partitions)
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout,
                                               max_records=max_records)
        return Fetch(records, starts, _positions(consumer, active_partitions))
