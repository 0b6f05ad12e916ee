"""``callstream broker start|stop|status``: the local Kafka, one node or a cluster."""

from __future__ import annotations

import argparse

from callstream.commands.common import add_setting_arg, settings_from_args
from common.config import setting


def _nodes(text: str) -> int:
    try:
        return setting("kafka_nodes").parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "broker", help="run a local Apache Kafka (KRaft, from Maven artifacts)",
        description="Run Apache Kafka 4.1 in KRaft mode as background JVMs: one node (the default) or "
                    "a cluster of 3 or 5 combined broker + controller nodes. Node 1 listens on "
                    "CALLSTREAM_BOOTSTRAP (its controller on the next port), node i two ports further "
                    "per node; data, logs and pids live under CALLSTREAM_KAFKA_DIR (node-<i>/ each). "
                    "stop and status cover every node.")
    parser.add_argument("action", choices=("start", "stop", "status"))
    add_setting_arg(parser, "--bootstrap", "bootstrap", metavar="HOST:PORT",
                    help_="address to listen on (default: CALLSTREAM_BOOTSTRAP)")
    add_setting_arg(parser, "--data-dir", "kafka_dir", metavar="DIR",
                    help_="data directory (default: CALLSTREAM_KAFKA_DIR or var/kafka)")
    add_setting_arg(parser, "--nodes", "kafka_nodes", _nodes, metavar="N",
                    help_="start: nodes of the cluster, 1, 3 or 5 (default: CALLSTREAM_KAFKA_NODES or 1)")
    parser.add_argument("--no-topics", action="store_true",
                        help="start: do not create the project's topics")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streams import broker, topics

    settings = settings_from_args(args)
    if args.action == "start":
        states = broker.start_nodes(settings)
        bootstrap = broker.cluster_bootstrap(settings)
        if not args.no_topics:
            cluster = settings.replace(bootstrap=bootstrap)
            topics.ensure_topics(cluster, topics.project_topics(cluster))
        if len(states) == 1:
            _, pid, started = states[0]
            print(f"kafka {'started' if started else 'already running'} (pid {pid}) bootstrap={bootstrap}")
            return 0
        for node, pid, started in states:
            print(f"kafka node {node.node_id} {'started' if started else 'already running'} (pid {pid}) "
                  f"{node.address}")
        print(f"kafka cluster of {len(states)} nodes bootstrap={bootstrap}")
        return 0
    if args.action == "stop":
        stopped = broker.stop(settings)
        print("kafka stopped" if stopped else "kafka was not running")
        return 0
    states = broker.node_status(settings)
    if len(states) == 1:
        node, pid = states[0]
        if pid is None:
            print("kafka not running")
            return 1
        print(f"kafka running (pid {pid}) bootstrap={node.address}")
        return 0
    for node, pid in states:
        print(f"kafka node {node.node_id} " + (f"running (pid {pid})" if pid else "not running")
              + f" {node.address}")
    return 0 if all(pid is not None for _, pid in states) else 1
