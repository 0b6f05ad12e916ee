"""The threshold rules on a timer: warehouse rows in, new alerts onto the alerts topic.

Runs in its own thread of ``callstream notify`` every
``CALLSTREAM_NOTIFY_THRESHOLD_INTERVAL_S`` over the warehouse's lock-free
reader; nothing it does can hold up deliveries. Each alert is sent once per
process (ids are deterministic, so a restart re-sending one is harmless:
notify delivers each (alert_id, state) once and the sink keeps one row).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from common.config import Settings
from notify import thresholds
from warehouse import threshold_queries as tq

log = logging.getLogger("callstream.notify.thresholds")


def evaluate(reader, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Every threshold alert the warehouse raises at ``now``."""
    hour = thresholds.hour_start(now)
    previous = hour - timedelta(hours=1)
    alerts = []
    for current in (previous, hour):  # the hour just ended, and the one running (spend only grows)
        rows = tq.hourly_spend(reader, thresholds.history_hours(current))
        alerts += thresholds.spend_spikes(rows, current, k=settings.spend_spike_k, floor=settings.spend_spike_floor)
    answers = tq.hourly_answers(reader, previous, hour)
    alerts += thresholds.low_asr(answers, previous, threshold=settings.asr_min, min_calls=settings.asr_min_calls)
    alerts += thresholds.storage_levels(tq.recording_storage_daily(reader), settings.recording_quota_bytes)
    return alerts


class Evaluator:
    """Evaluates the rules every interval and sends what is new."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self._reader = None
        self._producer = None
        self._sent: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def reader(self):
        """The warehouse reader (None until the sink has published a warehouse)."""
        if self._reader is None and (Path(self.settings.warehouse) / "manifest.json").exists():
            from warehouse.reader import Reader

            self._reader = Reader(self.settings.warehouse, memory_limit="256MiB", threads=1)
        return self._reader

    def run_once(self) -> list[dict[str, Any]]:
        """Evaluate now; send and return the alerts not sent before."""
        reader = self.reader()
        if reader is None:
            return []
        with self._lock:
            found = evaluate(reader, self.settings, self.clock())
        new = [a for a in found if (a["alert_id"], a["detail"]["state"]) not in self._sent]
        if new:
            self._send(new)
        return new

    def _send(self, alerts: list[dict[str, Any]]) -> None:
        from kafka import KafkaProducer

        from common.kafka_clients import compression_type

        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self.settings.bootstrap, acks="all",
                                           enable_idempotence=True,
                                           compression_type=compression_type(self.settings.compression),
                                           **self.settings.kafka_client_options())
        futures = [self._producer.send(self.settings.topic_alerts, key=a["portal_id"].encode(), value=orjson.dumps(a))
                   for a in alerts]
        self._producer.flush(30)
        for alert, future in zip(alerts, futures):
            future.get(timeout=30)
            self._sent.add((alert["alert_id"], alert["detail"]["state"]))
            log.info("threshold alert %s (%s)", alert["alert_id"], alert["detail"]["state"])

    def bypasses(self, portal_id: str, start_ms: int, end_ms: int | None) -> int | None:
        """Bypassed calls of a portal in a span, from the warehouse (None when it cannot say)."""
        reader = self.reader()
        if reader is None:
            return None
        start = datetime.fromtimestamp(start_ms / 1000, UTC)
        end = datetime.fromtimestamp(end_ms / 1000, UTC) if end_ms is not None else None
        try:
            with self._lock:
                return tq.bypassed_calls(reader, portal_id, start, end)
        except Exception:  # noqa: BLE001 - a count in a message text is not worth a failed delivery
            log.exception("bypass count from the warehouse failed")
            return None

    def loop(self, stop: threading.Event) -> None:
        """Evaluate every interval until ``stop``; a failing evaluation is logged and retried next time."""
        interval = self.settings.notify_threshold_interval_s
        while not stop.wait(min(interval, 5.0) if self._reader is None else interval):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - a bad warehouse moment must not stop deliveries
                log.exception("threshold rules: evaluation failed; retrying in %s s", interval)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(5)


def start_evaluator(settings: Settings, stop: threading.Event) -> Evaluator | None:
    """The evaluator's thread (None when CALLSTREAM_NOTIFY_THRESHOLD_INTERVAL_S is 0)."""
    if settings.notify_threshold_interval_s <= 0:
        return None
    evaluator = Evaluator(settings)
    threading.Thread(target=evaluator.loop, args=(stop,), name="notify-thresholds", daemon=True).start()
    return evaluator
