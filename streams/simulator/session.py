"""One ``callstream simulate`` run: engine, pacing, truth file, producer, progress, summary.

With ``rate == 0`` the engine runs in a child process (:mod:`streams.simulator.feeder`)
and this process only produces; with a rate, everything runs here, paced by
the wall clock (a few calls per second need no second core).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from common.config import Settings
from common.errors import CliError
from streams.simulator.engine import Simulator, Stats
from streams.simulator.feeder import ChildFeed, FeedSpec
from streams.simulator.malformed import LARGEST_VALUE
from streams.simulator.pacing import paced
from streams.simulator.produce import KafkaSink
from streams.simulator.truth import truth_file

_PROGRESS_EVERY = 4096  # messages between progress updates when paced


class Session:
    """A simulation wired to Kafka; ``run`` sends, ``summary`` tells what was sent."""

    def __init__(self, settings: Settings, spec: FeedSpec, compression: str) -> None:
        self.spec = spec
        self.topic = settings.topic_events
        self.stats = Stats()
        largest = LARGEST_VALUE if spec.faults.malformed else None
        self._sink = KafkaSink(settings, self.topic, compression, largest_value=largest)
        self._elapsed = 0.0

    @property
    def failed(self) -> int:
        """Messages the broker did not acknowledge."""
        return self._sink.failed

    @property
    def first_error(self) -> str | None:
        """The first delivery error, as text."""
        return self._sink.first_error

    def run(self, rate: float, stop: Callable[[], bool], progress: bool) -> None:
        """Send the spec's calls (0 = until ``stop()``), at ``rate`` calls/s (0 = flat out)."""
        from kafka.errors import KafkaError

        began = time.perf_counter()
        bar = _progress_bar(self.spec.calls) if progress else None
        try:
            if rate > 0:
                self._run_paced(rate, stop, bar)
            else:
                self._run_fed(stop, bar)
        except KafkaError as exc:
            raise CliError(f"sending to {self.topic} failed: {exc}") from None
        finally:
            if bar is not None:
                bar.close()
            self._close()
            self._elapsed = time.perf_counter() - began

    def _run_fed(self, stop: Callable[[], bool], bar: Any) -> None:
        feed = ChildFeed(self.spec)
        send, shown = self._sink.send, 0
        try:
            for batch in feed:
                for key, value in batch:
                    send(key, value)
                if stop():
                    feed.stop()
                if bar is not None:
                    bar.update(feed.calls - shown)
                    shown = feed.calls
        except BaseException:
            feed.close(kill=True)  # aborted: the child may be blocked on a pipe nobody reads
            raise
        feed.close()
        if feed.error:
            raise CliError(f"the generator failed: {feed.error}")
        self.stats = feed.stats

    def _run_paced(self, rate: float, stop: Callable[[], bool], bar: Any) -> None:
        spec = self.spec
        with truth_file(spec.truth_path) as on_truth:
            sim = Simulator(spec.seed, spec.portals, spec.start_us, spec.faults, spec.knobs, on_truth)
            self.stats = sim.stats
            messages = paced(sim, spec.calls, rate, spec.start_us,
                             random.Random(f"{spec.seed}:pace"), stop)
            send, shown = self._sink.send, 0
            for count, message in enumerate(messages, 1):
                send(message.key, message.value)
                if bar is not None and (count % _PROGRESS_EVERY == 0 or sim.pending == 0):
                    bar.update(sim.stats.calls - shown)
                    shown = sim.stats.calls

    def _close(self) -> None:
        from kafka.errors import KafkaError

        try:
            self._sink.close()
        except KafkaError as exc:
            raise CliError(f"flushing to {self.topic} failed: {exc}") from None

    def summary(self) -> str:
        """One line: calls, events, duplicates, malformed, events/s, seed."""
        stats = self.stats
        per_s = stats.messages / self._elapsed if self._elapsed > 0 else 0.0
        return (f"simulate: {stats.calls} calls, {stats.events} events, {stats.duplicates} duplicates, "
                f"{stats.malformed} malformed -> {self.topic} in {self._elapsed:.1f} s "
                f"({per_s:,.0f} events/s), seed {self.spec.seed}")


def _progress_bar(calls: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=calls or None, unit="call", unit_scale=True, dynamic_ncols=True)
