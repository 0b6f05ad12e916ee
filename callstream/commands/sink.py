"""``callstream sink``: consume CDRs, alerts, events and DLQ records into the warehouse."""

from __future__ import annotations

import argparse

from callstream.commands.common import (
    add_kafka_args,
    add_setting_arg,
    non_negative_float,
    positive_int,
    settings_from_args,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sink", help="load cdrs, alerts, events and DLQ counts into the DuckDB warehouse",
        description="The one writer of the warehouse (CALLSTREAM_WAREHOUSE): writes immutable "
                    "Parquet files plus an atomically replaced manifest, then commits offsets. "
                    "Readers in any process query it without locks. Stop with Ctrl-C or SIGTERM "
                    "(it flushes first); kill -9 is safe too.")
    add_kafka_args(parser)
    add_setting_arg(parser, "--warehouse", "warehouse", metavar="DIR",
                    help_="warehouse directory (default: CALLSTREAM_WAREHOUSE or var/warehouse)")
    add_setting_arg(parser, "--group", "sink_group", metavar="NAME",
                    help_="consumer group (default: CALLSTREAM_SINK_GROUP or callstream-sink)")
    parser.add_argument("--flush-interval", type=non_negative_float, default=0.5, metavar="S",
                        help="publish buffered messages at least this often (default 0.5 s)")
    parser.add_argument("--flush-rows", type=positive_int, default=100_000, metavar="N",
                        help="publish as soon as this many messages are buffered (default 100000)")
    parser.add_argument("--compact-files", type=positive_int, default=8, metavar="N",
                        help="merge a table's delta files once it has this many (default 8)")
    parser.add_argument("--compact-rows", type=positive_int, default=1_000_000, metavar="N",
                        help="fold deltas into the base once they hold this many rows (default 1000000)")
    parser.add_argument("--compact-age", type=non_negative_float, default=120.0, metavar="S",
                        help="... or once the oldest delta is this old (default 120 s)")
    parser.add_argument("--compact-interval", type=non_negative_float, default=60.0, metavar="S",
                        help="... but at most once per this many seconds per table (default 60 s)")
    parser.add_argument("--from-beginning", action="store_true",
                        help="re-read every topic from its first offset; messages already in the "
                             "warehouse are recognised by offset and skipped")
    parser.add_argument("--until-caught-up", action="store_true",
                        help="exit once every partition has been read to its end")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import sys
    import threading
    from pathlib import Path

    from common.errors import CliError
    from common.kafka_clients import require_codecs
    from warehouse.compaction import CompactionPolicy
    from warehouse.sink import Sink, SinkError, SinkOptions
    from warehouse.writer import Writer, WriterBusy

    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level != "DEBUG":  # kafka-python narrates every connection and offset reset at INFO
        logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = settings_from_args(args)
    require_codecs("sink")
    policy = CompactionPolicy(minor_files=args.compact_files, major_rows=args.compact_rows,
                              major_age_s=args.compact_age, major_interval_s=args.compact_interval)
    options = SinkOptions(flush_interval_s=args.flush_interval, flush_rows=args.flush_rows,
                          from_beginning=args.from_beginning, until_caught_up=args.until_caught_up,
                          policy=policy)
    try:
        writer = Writer(Path(settings.warehouse), memory_limit=f"{settings.sink_memory_mb}MB")
    except WriterBusy as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot open the warehouse at {settings.warehouse}: {exc.strerror}") from None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stats = Sink(settings, writer, options).run(stop)
    except SinkError as exc:
        raise CliError(str(exc)) from None
    finally:
        writer.close()
    print(f"callstream sink: {stats.messages} messages ({stats.skipped} already in the warehouse), "
          f"rows {stats.rows}, {stats.flushes} flushes", file=sys.stderr)
    return 0
