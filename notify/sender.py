"""Sending: one queue and a few threads per channel, so that one dead channel delays no other.

A channel that answers sends up to ``threads`` messages at once. After a
failure the channel is *failing*: one attempt at a time, each after an
exponential, jittered pause (:mod:`notify.backoff`) that grows with the
channel's run of failures, retries first. A message fails for good — an
:class:`Outcome` with ``delivered`` False — once it has had its attempts, once
it has waited longer than the retry budget while the channel kept failing,
or when a failing channel has more than ``backlog`` messages waiting (the
oldest go). Outcomes go to one queue that the service drains into the ledger.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from notify.backoff import Backoff
from notify.channels import Connection
from notify.plan import Send

log = logging.getLogger(__name__)


class Outcome(NamedTuple):
    """How a message ended: delivered or failed, after how many attempts, with the last error."""

    send: Send
    delivered: bool
    attempts: int
    error: str
    at_ms: int


@dataclass
class _Job:
    send: Send
    queued_at: float
    failures: int = 0
    error: str = ""


class ChannelSender:
    """The sending threads of one channel."""

    def __init__(self, url: str, results: queue.Queue[Outcome], backoff: Backoff, *, timeout_s: float = 10.0,
                 threads: int = 2, backlog: int = 10_000, connect: Callable[[str, float], Connection] = Connection,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        self.url = url
        self.results = results
        self.backoff = backoff
        self.backlog = backlog
        self._timeout_s = timeout_s
        self._connect = connect
        self._clock = clock
        self._rng = rng or random.Random()
        self._cond = threading.Condition()
        self._ready: deque[_Job] = deque()
        self._retry: list[tuple[float, int, _Job]] = []
        self._seq = itertools.count()
        self._in_flight = 0
        self.streak = 0  # failed attempts in a row
        self._pause_until = 0.0
        self.last_error = ""
        self.delivered = self.failed = 0
        self.items = 0  # alerts in the messages waiting, in flight included (digests hold many)
        self._closed = False
        self._threads = [threading.Thread(target=self._run, name=f"notify-send-{n}", daemon=True)
                         for n in range(threads)]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------ the service's side

    def submit(self, send: Send) -> None:
        """Queue a message (thread-safe; never blocks)."""
        with self._cond:
            self._ready.append(_Job(send, self._clock()))
            self.items += len(send.items)
            self._shed()
            self._cond.notify()

    @property
    def waiting(self) -> int:
        """Messages queued or being retried, in flight included."""
        with self._cond:
            return len(self._ready) + len(self._retry) + self._in_flight

    @property
    def failing(self) -> bool:
        """True while the channel's last attempt failed."""
        return self.streak > 0

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the threads (messages still queued stay owed: the ledger has no outcome for them)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)

    # ------------------------------------------------------------ the threads' side

    def _run(self) -> None:
        connection = None
        while True:
            job = self._take()
            if job is None:
                return
            try:
                if connection is None:
                    connection = self._connect(self.url, self._timeout_s)
                ok, error = connection.send(job.send.message, job.send.key)
            except Exception as exc:  # noqa: BLE001 - a broken plugin is a failed attempt
                ok, error = False, f"{type(exc).__name__}: {str(exc)[:200]}"
            self._done(job, ok, error)

    def _take(self) -> _Job | None:
        with self._cond:
            while True:
                if self._closed:
                    return None
                now = self._clock()
                self._give_up_stale(now)
                job, wait = self._next(now)
                if job is not None:
                    self._in_flight += 1
                    return job
                self._cond.wait(timeout=wait)

    def _next(self, now: float) -> tuple[_Job | None, float | None]:
        """The job to attempt now, or how long to wait (None: until notified)."""
        if self.streak:
            if self._in_flight:
                return None, None  # one attempt at a time while failing: wait for it
            if now < self._pause_until:
                return None, self._pause_until - now
        if self._retry and self._retry[0][0] <= now:
            return heapq.heappop(self._retry)[2], None
        if self._ready:
            return self._ready.popleft(), None
        return None, (self._retry[0][0] - now) if self._retry else None

    def _done(self, job: _Job, ok: bool, error: str) -> None:
        with self._cond:
            self._in_flight -= 1
            now = self._clock()
            if ok:
                self.streak, self._pause_until = 0, 0.0
                self.delivered += 1
                self._finish(job, True, "")
            else:
                job.failures += 1
                job.error = error
                self.streak += 1
                self.last_error = error
                self._pause_until = now + self.backoff.delay(self.streak, self._rng)
                if self.backoff.exhausted(job.failures):
                    self._finish(job, False, f"gave up after {job.failures} attempts: {error}")
                else:
                    due = now + self.backoff.delay(job.failures, self._rng)
                    heapq.heappush(self._retry, (due, next(self._seq), job))
                self._shed()
            self._cond.notify_all()

    def _finish(self, job: _Job, delivered: bool, error: str) -> None:
        self.items -= len(job.send.items)
        if not delivered:
            self.failed += 1
            log.warning("notify: delivery %s to %s failed: %s", job.send.key, job.send.channel[:60], error[:200])
        attempts = job.failures + (1 if delivered else 0)
        self.results.put(Outcome(job.send, delivered, attempts, error[:300], int(time.time() * 1000)))

    def _give_up_stale(self, now: float) -> None:
        """While failing, messages that waited longer than the retry budget fail without more attempts."""
        if not self.streak:
            return
        budget = self.backoff.budget_s
        while self._ready and now - self._ready[0].queued_at > budget:
            job = self._ready.popleft()
            self._finish(job, False, f"not sent: the channel kept failing for {budget:.0f} s "
                                     f"(last error: {self.last_error})")

    def _shed(self) -> None:
        """A failing channel keeps at most ``backlog`` messages; the oldest waiting go first."""
        if not self.streak:
            return
        while len(self._ready) + len(self._retry) > self.backlog and self._ready:
            job = self._ready.popleft()
            self._finish(job, False, f"not sent: the channel is failing with more than {self.backlog} "
                                     f"messages waiting (last error: {self.last_error})")
