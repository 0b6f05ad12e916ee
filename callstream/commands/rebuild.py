"""``callstream rebuild``: rebuild the warehouse from call-events offset 0, re-rating every call."""

from __future__ import annotations

import argparse
from pathlib import Path

from callstream.commands.common import add_kafka_args, add_setting_arg, settings_from_args

_REPORT_ROWS = 10  # rows per totals table on the terminal; the saved report has them all


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "rebuild", help="rebuild the warehouse from call-events offset 0, re-rating every call",
        description="Replays call-events from offset 0 to its end offsets at start through the "
                    "worker's own per-call step, rating with --tariffs, into a new warehouse "
                    "generation that is swapped in atomically only when complete (the sink must "
                    "be stopped). Prints and saves a re-rating report: calls whose cost changed, "
                    "and the difference by region and portal. With the worker's tariffs and "
                    "settings it reproduces the live warehouse.")
    add_kafka_args(parser)
    add_setting_arg(parser, "--warehouse", "warehouse", metavar="DIR",
                    help_="the warehouse to rebuild (default: CALLSTREAM_WAREHOUSE or var/warehouse)")
    add_setting_arg(parser, "--tariffs", "tariffs", metavar="FILE",
                    help_="tariff CSV to rate with (default: CALLSTREAM_TARIFFS or the packaged table)")
    parser.add_argument("--to", type=Path, default=None, metavar="PATH",
                        help="write the rebuilt warehouse to PATH (a new directory) instead of "
                             "swapping it in; the live warehouse is left alone")
    parser.add_argument("--report", type=Path, default=None, metavar="DIR",
                        help="save rerating-report-<time>.{txt,csv} here (default: next to the warehouse)")
    add_setting_arg(parser, "--workers", "rebuild_workers", metavar="N", type_=_workers,
                    help_="processes replaying partitions at once (default: CALLSTREAM_REBUILD_WORKERS or 2)")
    parser.add_argument("--fresh", action="store_true",
                        help="start over, even when an interrupted rebuild with the same settings and "
                             "tariffs could be continued")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    parser.set_defaults(run=run)


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    from common.errors import CliError, UsageError
    from common.kafka_clients import require_codecs
    from streams.domain.rating import TariffError, load_tariffs
    from warehouse.event_log import LogError
    from warehouse.reader import WarehouseError
    from warehouse.rebuild import RebuildError, RebuildOptions, rebuild
    from warehouse.replay_load import LoadOptions, config_of

    if args.to is not None and (args.to.exists() or args.to.is_symlink()):
        raise UsageError(f"--to {args.to} already exists; give a new path")
    # kafka-python narrates connection failures at WARNING; the error below says it in one line.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    settings = settings_from_args(args)
    require_codecs("rebuild")
    try:
        tariffs = load_tariffs(settings.tariffs_path)
    except TariffError as exc:
        raise UsageError(f"bad tariff file: {exc}") from None
    progress = _bar(args.no_progress, sys.stderr.isatty())
    _stop_on_signals(progress.stop)
    header = (f"tariffs: {settings.tariffs_path}", f"events: {settings.topic_events} on {settings.bootstrap}")
    try:
        options = RebuildOptions(args.to, args.report, LoadOptions(workers=settings.rebuild_workers),
                                 fresh=args.fresh)
        result = rebuild(settings, config_of(settings, tariffs), options, progress, report_header=header)
    except (RebuildError, LogError, WarehouseError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{exc.strerror or exc}: {exc.filename or settings.warehouse}") from None
    finally:
        progress.close()
    _print(result)
    return 0


def _stop_on_signals(stop) -> None:
    """Ctrl-C or SIGTERM asks the rebuild to stop at its next batch (it then deletes the unfinished
    generation and exits 130); a second one interrupts at once."""
    import signal

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


def _bar(quiet: bool, terminal: bool):
    """A tqdm progress bar on stderr (messages, messages/s, ETA) on a terminal, else a line per
    partition finished (a log, a pipe); silent when ``quiet``."""
    import sys
    import time

    from warehouse.replay_load import Progress

    class Bar(Progress):
        def __init__(self) -> None:
            super().__init__()
            self.bar = None
            self.total = self.read = 0
            self.began = time.monotonic()

        def start(self, total: int) -> None:
            self.total, self.began = total, time.monotonic()
            if not quiet and terminal:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="ev", unit_scale=True, dynamic_ncols=True,
                                desc="call-events")

        def update(self, messages: int) -> None:
            self.read += messages
            if self.bar is not None:
                self.bar.update(messages)

        def partition_done(self, partition: int, messages: int) -> None:
            if quiet or self.bar is not None:
                return
            seconds = time.monotonic() - self.began
            rate = self.read / seconds if seconds > 0 else 0.0
            print(f"callstream rebuild: partition {partition} done ({messages:,} events); "
                  f"{self.read:,} of {self.total:,} events read, {rate:,.0f} events/s",
                  file=sys.stderr, flush=True)

        def phase(self, name: str) -> None:
            if not quiet and self.bar is None:
                print(f"callstream rebuild: {name}", file=sys.stderr, flush=True)
            if self.bar is not None:
                self.bar.set_postfix_str(name)

        def close(self) -> None:
            if self.bar is not None:
                self.bar.close()

    return Bar()


def _print(result) -> None:
    import sys

    from warehouse import rerating

    stats = result.stats
    if result.report is not None:
        print(rerating.render(result.report, [f"Re-rating against {result.compared_with}:"],
                              limit=_REPORT_ROWS), end="")
        print("report saved: " + ", ".join(str(p) for p in result.report_files))
    rate = stats.messages / stats.seconds if stats.seconds else 0.0
    where = (f"swapped in at {result.location} -> {result.generation.name}"
             + (f" (previous generation kept at {result.previous})" if result.previous else "")
             if result.generation else f"written to {result.location}")
    resumed = (f" (continued an interrupted rebuild: {stats.resumed} of {stats.partitions} partitions "
               "were done)" if stats.resumed else "")
    warning = (f"; WARNING: partitions {stats.truncated} do not start at offset 0 (retention)"
               if stats.truncated else "")
    if stats.undecodable:
        warning += f"; WARNING: {stats.undecodable} rebuilt rows could not be decoded (table rejects)"
    print(f"callstream rebuild: {stats.messages:,} events ({stats.rejected:,} rejected) from "
          f"{stats.partitions} partitions -> {stats.calls:,} calls ({stats.incomplete:,} incomplete), "
          f"{stats.alerts:,} alerts in {stats.seconds:.1f} s ({rate:,.0f} events/s){resumed}; {where}{warning}",
          file=sys.stderr)
