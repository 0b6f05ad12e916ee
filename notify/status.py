"""Notify's status: a summary published every two seconds (and at once when all it read is settled),
read by the dashboard and the CLI.

The summary holds the ledger's counts (per channel and outcome), the recent
failed deliveries, each channel's queue and whether it is failing, the alerts
not yet read (lag) and the messages refused as not being alerts. It is a
convenience copy: ``callstream notify status --ledger`` recounts from the
deliveries topic itself.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

import orjson

from common.config import Settings
from common.kafka_clients import consumer_options

if TYPE_CHECKING:  # pragma: no cover
    from notify.service import Service

REFUSED_KEPT = 20


class Status:
    """The live counters of one service, and their publication."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.started_ms = int(time.time() * 1000)
        self.refused_count = 0
        self.refused_last: deque = deque(maxlen=REFUSED_KEPT)
        self.live: Counter = Counter()
        self.last_unsettled: int | None = None  # what the last published status said (None: unknown or none yet)

    def refused(self, refusal) -> None:
        """A message of the alerts topic that is not an alert."""
        self.refused_count += 1
        self.refused_last.append({"partition": refusal.partition, "offset": refusal.offset,
                                  "reason": refusal.reason, "error": refusal.error})

    def outcome(self, send, outcome) -> None:
        """A message sent (or given up on)."""
        name = self.service.display.get(send.channel, "?")
        result = "delivered" if outcome.delivered else "failed"
        self.service.state.counts[(name, result)] += len(send.items)
        self.live[result] += len(send.items)
        if not outcome.delivered:
            self.service.state.failures.append({"o": "failed", "ch": name, "t": outcome.at_ms,
                                                "n": outcome.attempts, "e": outcome.error,
                                                "m": [it.key for it in send.items],
                                                "a": [list(it.alert.pair) for it in send.items[:50]]})

    def settled(self, decision) -> None:
        """Deliveries settled without a message."""
        name = self.service.display.get(decision.items[0].channel, "?")
        self.service.state.counts[(name, decision.outcome)] += len(decision.items)
        self.live[decision.outcome] += len(decision.items)

    def summary(self) -> dict[str, Any]:
        """The status as a JSON-ready dict."""
        service = self.service
        channels = []
        for url, sender in service.senders.items():
            name = service.display[url]
            channels.append({"channel": name, "waiting": sender.waiting, "failing": sender.failing,
                             "last_error": sender.last_error[:300] if sender.failing else "",
                             "counts": {o: n for (c, o), n in service.state.counts.items() if c == name}})
        totals: Counter = Counter()
        for (_, outcome), n in service.state.counts.items():
            totals[outcome] += n
        return {"v": 1, "at_ms": int(time.time() * 1000), "started_ms": self.started_ms,
                "rules": service.rules.source, "routes": len(service.rules.routes),
                "lag": service.reader.lag(), "owed": service.progress.pending,
                "unsettled": service.reader.unsettled(service.cursors()),
                "waiting_in_plan": service.planner.waiting, "totals": dict(totals), "channels": channels,
                "failures": list(service.state.failures)[-50:], "refused": self.refused_count,
                "refused_last": list(self.refused_last), "since_start": dict(self.live),
                "silences": len(service.actions.active(int(time.time() * 1000)))}

    def publish(self) -> None:
        """Send the summary to the status topic (the newest one wins)."""
        summary = self.summary()
        self.last_unsettled = summary["unsettled"]
        self.service.writer.status(self.service.status_topic, orjson.dumps(summary))


def read_status(settings: Settings, timeout_s: float = 10.0) -> dict[str, Any] | None:
    """The newest published summary, or None when notify never published one."""
    from kafka import KafkaConsumer, TopicPartition

    topic = settings.notify_topics[2]
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                             fetch_max_wait_ms=50, **consumer_options(settings))
    try:
        if not consumer.partitions_for_topic(topic):
            return None
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = consumer.end_offsets([tp])[tp]
        if end == 0:
            return None
        consumer.seek(tp, max(0, end - 5))
        newest = None
        deadline = time.monotonic() + timeout_s
        while consumer.position(tp) < end and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    if record.key == b"status" and record.value:
                        newest = record.value
        return _loads(newest)
    finally:
        consumer.close()


def _loads(value: bytes | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        found = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None
