"""The ``callstream notify`` loop: alerts in, messages out, every outcome in the ledger.

One thread reads alerts and actions, decides (:mod:`notify.plan`) and records
(:mod:`notify.ledger`); each channel has its own sending threads
(:mod:`notify.sender`) that hand outcomes back through a queue. Every second
the ledger is flushed and only then are the cursors of settled alerts
recorded, so a ``kill -9`` at any moment loses nothing owed: the restart
re-reads from the cursors and skips what the ledger says is settled.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable

from common import collector, heap
from common.config import Settings
from notify import ledger as ledger_mod
from notify.actions import Actions
from notify.alerts import Alert, Refusal, parse_alert
from notify.backoff import Backoff
from notify.bypasses import Bypasses
from notify.channels import display
from notify.keys import DELIVERY_PERSON, batch_key, delivery_tail
from notify.plan import FirstStart, Item, Planner, Send, Settle
from notify.progress import Progress
from notify.reading import ActionsReader, AlertReader
from notify.rules import Rules
from notify.sender import ChannelSender, Outcome
from notify.status import Status

log = logging.getLogger("callstream.notify")
CHECKPOINT_S = 1.0
# Alerts waiting in the queues of channels that answer: beyond this, reading pauses until they drain
# (each owed alert costs a few hundred bytes; a catch-up would otherwise read far ahead of sending).
MAX_QUEUED_ALERTS = 100_000
STATUS_S = 2.0  # the status is published this often, and at once when all that was read is settled
TRIM_S = 5.0  # glibc's free heap is handed back this often (malloc_trim: a few ms for 100 MiB)
GC_THRESHOLDS = (20_000, 20, 50)  # cycle collector (common/collector.py; Python's: 700, 10, 10)
ROUTES_KEPT = 10_000  # (type, portal, state) whose routes are remembered


class Service:
    """One notify process."""

    def __init__(self, settings: Settings, rules: Rules, *, clock: Callable[[], float] = time.time,
                 bypass_fallback: Callable | None = None) -> None:
        self.settings = settings
        self.rules = rules
        self.clock = clock
        self.deliveries_topic, self.actions_topic, self.status_topic = settings.notify_topics
        self.results: queue.Queue[Outcome] = queue.Queue()
        self.backoff = Backoff(settings.notify_backoff_s, settings.notify_backoff_max_s, settings.notify_attempts)
        self.display = {url: display(url) for url in rules.channels}
        self.senders = {url: ChannelSender(url, self.results, self.backoff, timeout_s=settings.notify_timeout_s,
                                           threads=settings.notify_channel_threads, backlog=settings.notify_backlog)
                        for url in rules.channels}
        self.progress = Progress()
        self.actions = Actions()
        self.bypasses = Bypasses(bypass_fallback)
        self.state = ledger_mod.LedgerState()
        self.status = Status(self)
        self._written: dict[int, tuple[int, int]] = {}
        self._routes: dict[tuple[str, str, str], tuple] = {}

    # ------------------------------------------------------------ start

    def start(self) -> None:
        """Read the ledger and the actions, record a first start, open the alerts."""
        self.state = ledger_mod.load(self.settings, self.deliveries_topic)
        self.writer = ledger_mod.LedgerWriter(self.settings, self.deliveries_topic)
        self.actions_reader = ActionsReader(self.settings, self.actions_topic, self.actions)
        self.actions_reader.catch_up()
        self.reader = AlertReader(self.settings, self.state.cursors, self.rules.longest_window_s + 60)
        first = self.state.first_start
        if first is None:
            now = int(self.clock() * 1000)
            ends = self.reader.end_offsets()
            horizon = now - int(self.settings.notify_first_start_s * 1000)
            self.writer.first_start(horizon, ends, now)
            first = {"h": horizon, "e": {str(p): o for p, o in ends.items()}, "t": now}
            self.state.first_start = first
            log.warning("notify: first start; alerts on the topic older than %s s are recorded as not "
                        "delivered", self.settings.notify_first_start_s)
        self.first = FirstStart(int(first.get("h", 0)), {int(p): int(o) for p, o in first.get("e", {}).items()})
        self.planner = Planner(self.actions, first_start=self.first, digest_max=self.settings.notify_digest_max,
                               dash_url=self.settings.dash_url, bypasses=self.bypasses.count)
        self._written = dict(self.state.cursors)
        for partition, offset in self.reader.resume.items():
            if offset == 0:
                self.bypasses.from_beginning(partition)
        # A catch-up keeps tens of thousands of alerts in digest windows: each full
        # collection over them cost a quarter of its CPU.
        collector.quiet(*GC_THRESHOLDS)


    # ------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set."""
        # A catch-up frees fetched batches, digests and ledger records by the thousand between long-lived
        # alerts waiting in windows: with glibc's threshold pinned, large buffers are mapped on their own,
        # and the free heap goes back every TRIM_S (its free part had grown to 60 MiB of a 1M catch-up).
        heap.fix_mmap_threshold()
        trim = heap.trimmer()
        self.start()
        last_checkpoint = last_status = last_trim = 0.0
        try:
            while not stop.is_set():
                self.step()
                now = time.monotonic()
                if now - last_checkpoint >= CHECKPOINT_S:
                    self.checkpoint()
                    last_checkpoint = now
                if now - last_status >= STATUS_S:
                    self.status.publish()
                    last_status = now
                elif self.status.last_unsettled != 0 and self.settled():
                    # Everything read is settled since the last status said otherwise: say so now (recorded
                    # first), not up to STATUS_S later. At most one such status per interval.
                    self.checkpoint()
                    self.status.publish()
                    last_checkpoint = last_status = now
                if trim is not None and now - last_trim >= TRIM_S:
                    trim()
                    last_trim = now
        finally:
            self.close()

    def settled(self) -> bool:
        """True when every alert up to each partition's end (as of the last fetch) is settled."""
        return self.reader.unsettled(self.cursors()) == 0

    def step(self, poll_ms: int = 100) -> int:
        """Read what arrived, decide, hand outcomes to the ledger; the number of alerts read."""
        self.actions_reader.poll(0)
        self.reader.pause(self._backed_up())
        records = self.reader.poll(timeout_ms=poll_ms)
        self.take_batch(records)
        self._handle(self.planner.tick(self.reader.refresh_watermarks(int(self.clock() * 1000))))
        self.drain()
        return len(records)

    def take(self, partition: int, offset: int, msg_ts_ms: int, value: bytes | None) -> None:
        """One alerts message: owed deliveries offered to the planner, or nothing."""
        self.take_batch([(partition, offset, msg_ts_ms, value)])

    def take_batch(self, records) -> None:
        """A fetch's messages ((partition, offset, message time, value) each, in log order per partition).

        One loop with its lookups bound once: a catch-up spends most of its time here, per alert. The
        routes of a (type, portal, state) come with each channel's hashed key tail, so an alert costs
        one hash per channel; a partition's next offset is noted once per run of its records.
        """
        parse, see, planner = parse_alert, self.bypasses.see, self.planner
        hit, offer, handle = planner.hit, planner.offer, self._handle
        routes_kept, routes_for = self._routes, self._routes_for
        done, progress = self.state.done, self.progress
        owe, passed, already_owed = progress.owe, progress.passed, progress.owed
        resume = self.reader.resume
        hasher = hashlib.blake2b(digest_size=16, person=DELIVERY_PERSON).copy  # a copy: half a new one's cost
        partition = -1
        offset = msg_ts_ms = warm_below = 0
        for record in records:
            if record[0] != partition:
                if partition >= 0:
                    passed(partition, offset, msg_ts_ms)
                partition = record[0]
                warm_below = resume.get(partition, 0)
            _, offset, msg_ts_ms, value = record
            alert = parse(value, partition, offset, msg_ts_ms)
            if alert.__class__ is Refusal:
                self.status.refused(alert)
                continue
            see(alert)
            routes = routes_kept.get((alert.type, alert.portal_id, alert.state))
            if routes is None:
                routes = routes_for(alert)
            if offset < warm_below:  # warm-up: settled already, counts only
                for route, _ in routes:
                    hit(alert, route)
                continue
            owed: list[int] = []
            decisions: list = []
            head = alert.alert_id.encode()
            for route, tails in routes:
                if route.min_hits > 1:
                    hit(alert, route)
                for channel, tail in tails:
                    hashed = hasher()  # delivery_key(alert_id, state, channel), inline
                    hashed.update(head + tail)
                    key = hashed.hexdigest()
                    number = int(key[:16], 16)  # key_int, inline
                    if number in done or number in owed:
                        continue
                    already = already_owed(number)
                    owed.append(number)
                    if not already:
                        decisions += offer(Item(key, alert, route, channel))
            if owed:
                owe(partition, offset, msg_ts_ms, owed)
            if decisions:
                handle(decisions)
        if partition >= 0:
            passed(partition, offset, msg_ts_ms)

    def _routes_for(self, alert: Alert) -> tuple:
        """The routes an alert takes, each with its channels' key tails, per (type, portal, state) (bounded)."""
        place = (alert.type, alert.portal_id, alert.state)
        routes = self._routes.get(place)
        if routes is None:
            if len(self._routes) >= ROUTES_KEPT:
                self._routes.clear()
            routes = self._routes[place] = tuple(
                (route, tuple((channel, delivery_tail(alert.state, channel)) for channel in route.channels))
                for route in self.rules.routes_for(alert))
        return routes

    def drain(self) -> None:
        """Record the outcomes the senders reported."""
        while True:
            try:
                outcome = self.results.get_nowait()
            except queue.Empty:
                return
            send = outcome.send
            members = [it.key for it in send.items]
            alerts = [it.alert.pair for it in send.items] if not outcome.delivered else None
            self.writer.outcome(send.key, ledger_mod.DELIVERED if outcome.delivered else ledger_mod.FAILED,
                                members, self.display.get(send.channel, "?"), attempts=outcome.attempts,
                                error=outcome.error, alerts=alerts, at_ms=outcome.at_ms)
            self.status.outcome(send, outcome)
            self._settle(members)

    def checkpoint(self) -> None:
        """Flush the ledger, then record each partition's cursor that moved."""
        self.writer.flush()
        for tp in self.reader.tps:
            cursor = self.progress.cursor(tp.partition)
            if cursor is not None and cursor != self._written.get(tp.partition):
                self.writer.cursor(tp.partition, *cursor)
                self._written[tp.partition] = cursor

    def cursors(self) -> dict[int, int]:
        """Each partition's first unsettled offset (as far as this process has read)."""
        return {tp.partition: c[0] for tp in self.reader.tps
                if (c := self.progress.cursor(tp.partition)) is not None}

    def close(self) -> None:
        """Stop the senders, record what settled, close the clients."""
        for sender in self.senders.values():
            sender.close(timeout_s=1.0)
        try:
            self.drain()
            self.checkpoint()
            self.status.publish()
            self.writer.flush()
        finally:
            self.writer.close()
            self.reader.close()
            self.actions_reader.close()

    # ------------------------------------------------------------ helpers

    def _handle(self, decisions: list) -> None:
        for decision in decisions:
            if isinstance(decision, Send):
                self.senders[decision.channel].submit(decision)
            elif isinstance(decision, Settle):
                members = [it.key for it in decision.items]
                channel = self.display.get(decision.items[0].channel, "?")
                self.writer.outcome(batch_key(decision.outcome, members), decision.outcome, members, channel,
                                    error=decision.why, at_ms=int(self.clock() * 1000))
                self.status.settled(decision)
                self._settle(members)

    def _settle(self, members: list[str]) -> None:
        numbers = [int(key[:16], 16) for key in members]  # key_int, inline: a digest settles hundreds at once
        self.state.done.add_many(numbers)
        self.progress.settle_many(numbers)

    def _backed_up(self) -> bool:
        """True while channels that answer (slowly) have full queues: reading waits for them.

        Alerts held by the planner (digest windows, min-hits) never count: a window closes only as
        reading moves on. A failing channel sheds its own queue instead (see the sender).
        """
        live = [s for s in self.senders.values() if not s.failing]
        return (any(s.waiting >= self.settings.notify_backlog for s in live)
                or sum(s.items for s in live) >= MAX_QUEUED_ALERTS)


def alerts_of(items) -> list[Alert]:
    """The alerts of some plan items."""
    return [it.alert for it in items]
