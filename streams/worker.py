"""Run the worker process: check inputs, create topics, start Faust."""

from __future__ import annotations

import asyncio
import logging
import signal

from common import collector, heap
from common.config import Settings
from common.errors import CliError
from common.kafka_clients import require_codecs
from streams import census, logthrottle, topics
from streams.app import changelog_topic_names, declare, internal_topic_names
from streams.domain.rating import TariffError, TariffTable, load_tariffs
from streams.faust_fence import diagnostics

GC_THRESHOLDS = (1_000_000, 20, 1_000)


def load_tariffs_or_fail(settings: Settings) -> TariffTable:
    """The tariff table, or a one-line error naming the file and line."""
    try:
        return load_tariffs(settings.tariffs_path)
    except FileNotFoundError:
        raise CliError(f"tariff file not found: {settings.tariffs_path}", exit_code=2) from None
    except TariffError as exc:
        raise CliError(f"bad tariff file: {exc}", exit_code=2) from None


def worker_topics(settings: Settings) -> list[topics.TopicSpec]:
    """The contract's topics plus the worker group's internal ones, its tables' changelogs included.

    Faust would create the changelogs itself, but a topic it creates moments before
    the group's first assignment can be missing from the metadata the assignment
    reads ("Ignoring missing topic"): that table's changelog partitions were then
    assigned to nobody, and a worker taking partitions over did not restore them.
    """
    commands, signals = internal_topic_names(settings)
    limit = {"max.message.bytes": topics.INTERNAL_MESSAGE_BYTES}
    return topics.project_topics(settings) + [
        topics.TopicSpec(commands, settings.events_partitions,
                         {"retention.ms": str(24 * 3600 * 1000), **limit}),
        topics.TopicSpec(signals, settings.events_partitions,
                         {"retention.ms": str(7 * 24 * 3600 * 1000), **limit}),
    ] + [topics.TopicSpec(name, settings.events_partitions, {"cleanup.policy": "compact", **limit})
         for name in changelog_topic_names(settings)]


def run_worker(settings: Settings, *, loglevel: str = "warning") -> None:
    """Build the Faust app and run it until SIGINT/SIGTERM."""
    from faust.worker import Worker as FaustWorker

    from streams.agents import register

    require_codecs("worker")
    heap.fix_mmap_threshold()
    tariffs = load_tariffs_or_fail(settings)
    specs = worker_topics(settings)
    topics.ensure_topics(settings, specs)
    topics.wait_listed(settings, [spec.name for spec in specs])
    commands, signals = internal_topic_names(settings)
    internal = set(changelog_topic_names(settings)) | {commands, signals}
    topics.raise_message_limits(settings, [spec for spec in specs if spec.name in internal])
    worker = declare(settings, tariffs)
    batches = register(worker)
    level = logging.getLevelName(loglevel.upper())

    @worker.app.task
    async def trim_hot_path() -> None:
        # mode's logging set-up leaves loggers at DEBUG with a filtering handler:
        # every debug call on the hot path (aiokafka logs each request) would still
        # build a LogRecord. Raise the loggers themselves once the worker runs.
        for name in ("", "aiokafka", "faust", "mode", "callstream"):
            logging.getLogger(name).setLevel(level)
        logthrottle.install()
        # Faust's Monitor sensor keeps per-event statistics for its web UI, which
        # the worker does not run; it cost ~5% of the worker's CPU. Offset-commit
        # bookkeeping calls the monitor directly and is unaffected.
        if worker.app.monitor in set(worker.app.sensors):
            worker.app.sensors.remove(worker.app.monitor)
        # The worker allocates short-lived objects per event (Faust's messages and
        # events, aiokafka records) by the million; with CPython's default
        # thresholds the cyclic collector ran so often over the long-lived ones
        # (Faust's and our state) that it took a third of the CPU (measured:
        # 14,000 -> 22,000 events per CPU-second at 200k). A batch keeps up to
        # a few hundred thousand objects alive until it is done: collecting the
        # young generation only every million net allocations lets most batches
        # end before a collection walks (and promotes) their objects (+10 % in
        # an interleaved A/B against 200k; the peak RSS with 100,000 open calls
        # did not grow). The old generation is collected rarely, and what
        # start-up created is moved out of the collector's way.
        collector.quiet(*GC_THRESHOLDS)
        # `kill -USR1 <pid>` logs what every asyncio task is waiting on: the way
        # to see inside a worker that looks idle.
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGUSR1, lambda: logging.getLogger("callstream.worker").warning(
                "asyncio tasks:\n%s", diagnostics.report(worker.app)))
        # `kill -USR2 <pid>` logs what the worker's memory holds (streams/census.py).
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGUSR2, lambda: logging.getLogger("callstream.worker").warning(
                "%s", census.report(worker, batches.store.schedule)))

    trim = heap.trimmer()
    if trim is not None:
        @worker.app.timer(heap.TRIM_INTERVAL_S, name="trim_heap")
        async def trim_heap() -> None:
            trim()

    FaustWorker(worker.app, loglevel=loglevel, quiet=True).execute_from_commandline()
