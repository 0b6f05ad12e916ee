"""``callstream worker``: the Faust worker that turns events into CDRs and alerts."""

from __future__ import annotations

import argparse

from callstream.commands.common import add_kafka_args, add_setting_arg, positive_float, settings_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "worker", help="assemble CDRs and raise alerts from call-events (faust)",
        description="Consume call-events; send CDR versions to cdrs, alerts to alerts and "
                    "rejected messages to call-events-dlq. Workers sharing a group share "
                    "partitions; call state lives in changelog-backed tables.")
    add_kafka_args(parser)
    add_setting_arg(parser, "--tariffs", "tariffs", metavar="CSV",
                    help_="tariff table (default: CALLSTREAM_TARIFFS or the packaged table)")
    add_setting_arg(parser, "--incomplete-after", "incomplete_after", positive_float,
                    metavar="SECONDS", help_="emit an incomplete CDR after this quiet time")
    add_setting_arg(parser, "--forget-after", "forget_after", positive_float, metavar="SECONDS",
                    help_="move a settled call from memory to the on-disk archive after this")
    add_setting_arg(parser, "--group", "worker_group", metavar="NAME",
                    help_="consumer group / Faust app id")
    add_setting_arg(parser, "--state-dir", "state_dir", metavar="DIR",
                    help_="local directory of this worker's on-disk store")
    parser.add_argument("--log-level", dest="log_level", default=None,
                        choices=("debug", "info", "warning", "error"),
                        help="default: CALLSTREAM_LOG_LEVEL or warning")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    settings = settings_from_args(args)
    run_worker(settings, loglevel=settings.log_level)
    return 0
