"""``callstream topics create|list``: the contract's topics on any cluster."""

from __future__ import annotations

import argparse

from callstream.commands.common import add_kafka_args, add_setting_arg, positive_int, settings_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "topics", help="create or list the project's topics",
        description="create: make call-events (unlimited retention), call-events-dlq, cdrs "
                    "(compacted) and alerts with the configured partitions; idempotent. "
                    "list: topics and partition counts.")
    parser.add_argument("action", choices=("create", "list"))
    add_kafka_args(parser)
    add_setting_arg(parser, "--partitions", "events_partitions", positive_int, metavar="N",
                    help_="partitions of call-events (default: CALLSTREAM_EVENTS_PARTITIONS or 8)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streams import topics

    settings = settings_from_args(args)
    if args.action == "create":
        for name, outcome in topics.ensure_topics(settings, topics.project_topics(settings)).items():
            print(f"{name}: {outcome}")
        return 0
    for name, partitions in topics.describe(settings):
        print(f"{name}\t{partitions}")
    return 0
