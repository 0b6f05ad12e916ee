"""The dashboard's view of notify: acknowledgements and silences (the actions topic) and notify's
published status, followed by one background thread; actions published from the Alerts page.

Kafka being away does not break the page: the board says what it cannot reach and the page shows
that instead of its tables; the next tick tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson

from common.config import Settings
from notify.actions import Actions

log = logging.getLogger(__name__)
RETRY_S = 10.0


class NotifyBoard:
    """Actions and status as notify sees them, kept fresh by a daemon thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.actions = Actions()
        self.status: dict[str, Any] | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self._publisher = None
        self._thread: threading.Thread | None = None

    def start(self) -> NotifyBoard:
        """Start following the topics (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._follow, name="notify-board", daemon=True)
            self._thread.start()
        return self

    def publish(self, key: bytes, value: bytes) -> None:
        """Store an action on the topic (raises when Kafka refuses), and show it at once."""
        from notify.publish import Publisher

        with self._lock:
            if self._publisher is None:
                self._publisher = Publisher(self.settings)
            self._publisher.publish(key, value)
            self.actions.apply(value)

    def _follow(self) -> None:
        while True:
            try:
                self._read()
            except Exception as exc:  # noqa: BLE001 - the page shows it; the thread tries again
                with self._lock:
                    self.error = f"{type(exc).__name__}: {exc}"[:200]
                log.warning("notify board: %s; retrying in %.0f s", self.error, RETRY_S)
                time.sleep(RETRY_S)

    def _read(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        from common.kafka_clients import consumer_options

        _, actions_topic, status_topic = self.settings.notify_topics
        consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap, enable_auto_commit=False,
                                 fetch_max_wait_ms=200, **consumer_options(self.settings))
        try:
            # The dashboard creates no topic: notify (or callstream up) does.
            missing = [t for t in (actions_topic, status_topic) if not consumer.partitions_for_topic(t)]
            if missing:
                raise LookupError(f"no topic {missing[0]} yet: callstream notify creates it")
            actions_tp, status_tp = TopicPartition(actions_topic, 0), TopicPartition(status_topic, 0)
            consumer.assign([actions_tp, status_tp])
            consumer.seek_to_beginning(actions_tp)
            end = consumer.end_offsets([status_tp])[status_tp]
            consumer.seek(status_tp, max(0, end - 3))
            fresh = Actions()  # a re-read after an error starts from nothing, then replaces the old state
            caught_up = False
            while True:
                batches = consumer.poll(timeout_ms=500, max_records=5000)
                with self._lock:
                    for tp, records in batches.items():
                        for record in records:
                            if tp == actions_tp:
                                fresh.apply(record.value)
                            elif record.key == b"status" and record.value:
                                self.status = _loads(record.value)
                    if not caught_up:
                        caught_up = consumer.position(actions_tp) >= consumer.end_offsets([actions_tp])[actions_tp]
                    if caught_up:
                        self.actions, self.error = fresh, None
        finally:
            consumer.close()


def _loads(value: bytes) -> dict[str, Any] | None:
    try:
        found = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


def board_of(ctx: Any) -> NotifyBoard:
    """The board of a dashboard context (made and started on first use)."""
    board = getattr(ctx, "notify_board", None)
    if board is None:
        board = ctx.notify_board = NotifyBoard(ctx.settings).start()
    return board
