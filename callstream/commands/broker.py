"""``callstream broker start|stop|status``: the local single-node Kafka."""

from __future__ import annotations

import argparse

from callstream.commands.common import add_setting_arg, settings_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "broker", help="run a local Apache Kafka (KRaft, from Maven artifacts)",
        description="Run a single-node Apache Kafka 4.1 in KRaft mode as a background JVM. "
                    "Listens on CALLSTREAM_BOOTSTRAP (controller on the next port); data, logs "
                    "and pid live under CALLSTREAM_KAFKA_DIR.")
    parser.add_argument("action", choices=("start", "stop", "status"))
    add_setting_arg(parser, "--bootstrap", "bootstrap", metavar="HOST:PORT",
                    help_="address to listen on (default: CALLSTREAM_BOOTSTRAP)")
    add_setting_arg(parser, "--data-dir", "kafka_dir", metavar="DIR",
                    help_="data directory (default: CALLSTREAM_KAFKA_DIR or var/kafka)")
    parser.add_argument("--no-topics", action="store_true",
                        help="start: do not create the project's topics")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streams import broker, topics

    settings = settings_from_args(args)
    if args.action == "start":
        pid, started = broker.start(settings)
        if not args.no_topics:
            topics.ensure_topics(settings, topics.project_topics(settings))
        word = "started" if started else "already running"
        print(f"kafka {word} (pid {pid}) bootstrap={settings.bootstrap}")
        return 0
    if args.action == "stop":
        stopped = broker.stop(settings)
        print("kafka stopped" if stopped else "kafka was not running")
        return 0
    pid = broker.status(settings)
    if pid is None:
        print("kafka not running")
        return 1
    print(f"kafka running (pid {pid}) bootstrap={settings.bootstrap}")
    return 0
