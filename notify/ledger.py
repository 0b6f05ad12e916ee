"""The deliveries topic: every outcome, notify's progress, and its first start — all it remembers.

A compacted, single-partition topic (``<alerts>-deliveries``), so a restart
on a fresh machine rebuilds everything from the broker alone. Records:

- ``k:<key>`` — an outcome: ``o`` delivered / failed / silenced / … , ``m``
  the idempotency keys of the (alert_id, state, channel) it settles (one, or a
  digest's members), ``ch`` the channel (secrets masked), ``n`` attempts,
  ``e`` the last error, ``a`` the alerts ([alert_id, state], failures only),
  ``t`` when (ms);
- ``c:<partition>`` — the cursor of an alerts partition: every alert before
  offset ``o`` is settled (``t``: that alert's message time);
- ``first-start`` — when notify first started (``h``: the horizon before which
  alerts on the topic then, ``e`` its end offsets, were not delivered).

Cursors are written after the outcomes they cover (one partition, an
idempotent producer: in order), so a crash leaves either an outcome without
its cursor — re-read, found in :class:`DoneSet`, skipped — or neither.
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from common.config import Settings
from common.kafka_clients import compression_type, consumer_options
from notify.keys import key_int

log = logging.getLogger(__name__)
FIRST_START = b"first-start"
FAILURES_KEPT = 200
DELIVERED, FAILED = "delivered", "failed"


class LedgerError(RuntimeError):
    """The deliveries topic did not store a record: notify must not go on as if it had."""


class DoneSet:
    """The settled deliveries' keys (64 bits each): a sorted array plus a small set of recent ones.

    8 bytes per key in the array (a Python set of ints costs ~60): a million
    settled deliveries cost ~8 MiB. A lookup is a set probe, then a C bisection of
    the array (a numpy call per lookup cost 60 µs, most of notify's time per alert).
    The recent set is merged in past 100,000 (a sort-merge: linear in the array).
    """

    MERGE_AT = 100_000

    def __init__(self, keys: Iterable[int] = ()) -> None:
        self._base = self._array(_sorted_unique(np.fromiter(keys, dtype=np.uint64)))
        self._recent: set[int] = set()

    @staticmethod
    def _array(sorted_keys: np.ndarray) -> array:
        out = array("Q")
        out.frombytes(sorted_keys.astype(np.uint64).tobytes())
        return out

    def add(self, key: int) -> None:
        """Remember a key."""
        self._recent.add(key)
        if len(self._recent) >= self.MERGE_AT:
            self._merge()

    def add_many(self, keys: list[int]) -> None:
        """Remember several keys (a digest's members)."""
        self._recent.update(keys)
        if len(self._recent) >= self.MERGE_AT:
            self._merge()

    def __contains__(self, key: int) -> bool:
        if key in self._recent:
            return True
        base = self._base
        i = bisect_left(base, key)
        return i < len(base) and base[i] == key

    def __len__(self) -> int:
        return len(self._base) + len(self._recent)

    def _merge(self) -> None:
        base = np.frombuffer(self._base, dtype=np.uint64) if len(self._base) else np.empty(0, dtype=np.uint64)
        recent = np.sort(np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent)))
        # Two sorted runs: a stable sort (timsort) merges them in one linear pass.
        self._base = self._array(_sorted_unique(np.concatenate((base, recent)), kind="stable"))
        self._recent = set()


def _sorted_unique(keys: np.ndarray, kind: str = "quicksort") -> np.ndarray:
    """The distinct keys, sorted.

    Not ``np.unique``/``np.union1d``: numpy 2.4 answers them with a hash table, then sorts, and
    that took 0.8 s for a million uint64 keys (a sort and a neighbour comparison: 0.01-0.09 s). A
    catch-up of a million deliveries merged ten times: 3.8 s, a sixth of its main thread.
    """
    keys = np.sort(keys, kind=kind)
    if len(keys) > 1:
        keep = np.empty(len(keys), dtype=bool)
        keep[0] = True
        np.not_equal(keys[1:], keys[:-1], out=keep[1:])
        keys = keys[keep]
    return keys


@dataclass
class LedgerState:
    """What the deliveries topic says: settled keys, cursors, first start, counts, recent failures."""

    done: DoneSet = field(default_factory=DoneSet)
    cursors: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (offset, msg ts ms)
    first_start: dict[str, Any] | None = None
    counts: Counter = field(default_factory=Counter)  # (channel, outcome) -> deliveries
    failures: deque = field(default_factory=lambda: deque(maxlen=FAILURES_KEPT))
    records: int = 0

    def apply(self, key: bytes | None, value: bytes | None, keys: array | None = None) -> None:
        """Fold one record in (``keys``: collect settled keys there instead of in ``done``)."""
        if key is None or value is None:
            return
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if not isinstance(record, dict):
            return
        self.records += 1
        if key.startswith(b"k:"):
            self._outcome(record, keys)
        elif key.startswith(b"c:"):
            try:
                self.cursors[int(key[2:])] = (int(record["o"]), int(record.get("t", 0)))
            except (KeyError, TypeError, ValueError):
                pass
        elif key == FIRST_START:
            self.first_start = record

    def _outcome(self, record: dict[str, Any], keys: array | None) -> None:
        members = record.get("m")
        if not isinstance(members, list):
            return
        for member in members:
            if isinstance(member, str) and len(member) >= 16:
                try:
                    value = key_int(member)
                except ValueError:
                    continue
                if keys is not None:
                    keys.append(value)
                else:
                    self.done.add(value)
        outcome = str(record.get("o", "?"))[:40]
        self.counts[(str(record.get("ch", "?"))[:200], outcome)] += len(members)
        if outcome == FAILED:
            self.failures.append(record)


def load(settings: Settings, topic: str, *, timeout_s: float = 60.0) -> LedgerState:
    """Read the whole deliveries topic (missing or empty: a first start)."""
    from kafka import KafkaConsumer, TopicPartition

    state = LedgerState()
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                             max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024,
                             **consumer_options(settings))
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return state
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        keys = array("Q")
        import time

        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the deliveries topic {topic} was not read within {timeout_s:.0f} s")
            for records in consumer.poll(timeout_ms=500, max_records=50_000).values():
                for record in records:
                    state.apply(record.key, record.value, keys)
        state.done = DoneSet(keys)
        return state
    finally:
        consumer.close()


class LedgerWriter:
    """Appends outcomes and cursors to the deliveries topic."""

    def __init__(self, settings: Settings, topic: str) -> None:
        from kafka import KafkaProducer

        self.topic = topic
        self._producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True,
                                       linger_ms=5, batch_size=256 * 1024, max_request_size=4 * 1024 * 1024,
                                       compression_type=compression_type(settings.compression),
                                       **settings.kafka_client_options())
        self.errors: list[str] = []

    def _send(self, topic: str, key: bytes, value: bytes):
        future = self._producer.send(topic, key=key, value=value)
        future.add_errback(lambda exc: self.errors.append(f"{type(exc).__name__}: {exc}"[:300]))
        return future

    def outcome(self, key: str, outcome: str, members: list[str], channel: str, *, attempts: int = 0,
                error: str = "", alerts: list[tuple[str, str]] | None = None, at_ms: int = 0) -> None:
        """Record how some deliveries ended."""
        record: dict[str, Any] = {"o": outcome, "m": members, "ch": channel, "t": at_ms}
        if attempts:
            record["n"] = attempts
        if error:
            record["e"] = error[:300]
        if alerts:
            record["a"] = [list(pair) for pair in alerts[:50]]
        self._send(self.topic, b"k:" + key.encode(), orjson.dumps(record))

    def cursor(self, partition: int, offset: int, msg_ts_ms: int) -> None:
        """Record that every alert of ``partition`` before ``offset`` is settled."""
        self._send(self.topic, b"c:%d" % partition, orjson.dumps({"o": offset, "t": msg_ts_ms}))

    def first_start(self, horizon_ms: int, end_offsets: dict[int, int], at_ms: int) -> None:
        """Record the first start (and wait until it is stored)."""
        value = orjson.dumps({"h": horizon_ms, "e": {str(p): o for p, o in end_offsets.items()}, "t": at_ms})
        self._send(self.topic, FIRST_START, value).get(timeout=30)

    def status(self, topic: str, value: bytes) -> None:
        """Publish the status summary (the newest one is what readers show)."""
        self._send(topic, b"status", value)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until everything sent is acknowledged; LedgerError when the broker refused a record.

        Progress is never recorded past an outcome that is not stored: the service stops instead.
        """
        self._producer.flush(timeout_s)
        if self.errors:
            raise LedgerError(f"the deliveries topic {self.topic} refused a record: {self.errors[0]}")

    def close(self) -> None:
        """Flush and close."""
        self._producer.close(10)
