"""``callstream up``: the whole pipeline in one command, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import argparse

from callstream.commands.common import (add_kafka_args, add_setting_arg, non_negative_float, positive_int,
                                        probability, settings_from_args)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``up`` and its flags."""
    parser = sub.add_parser(
        "up", help="run everything: broker, topics, worker, sink, simulator, dashboard",
        description="Start, in order and each once it is ready: the local Kafka broker (or use the one "
                    "at CALLSTREAM_BOOTSTRAP if it answers), the topics, the worker, the sink, the "
                    "simulator (continuous calls with occasional Controller outages) and the dashboard; "
                    "print the dashboard's URL. Ctrl-C (or SIGTERM) stops them all in reverse order and "
                    "leaves no process behind (the broker only if this command started it). Logs of "
                    "the parts go to --logs.")
    parser.add_argument("--rate", type=non_negative_float, default=10.0, metavar="CALLS_PER_S",
                        help="simulated calls per second (default 10)")
    parser.add_argument("--outage-rate", type=probability, default=0.05, metavar="P",
                        help="share of time each portal's Controller is unreachable (default 0.05)")
    parser.add_argument("--portals", type=positive_int, default=20, metavar="K",
                        help="simulated portals (default 20)")
    parser.add_argument("--no-simulate", action="store_true",
                        help="do not start the simulator (events come from real voice servers)")
    parser.add_argument("--logs", default="var/logs", metavar="DIR", help="log directory (default var/logs)")
    add_setting_arg(parser, "--host", "dash_host", metavar="H",
                    help_="dashboard address (default: CALLSTREAM_DASH_HOST or 127.0.0.1)")
    add_setting_arg(parser, "--port", "dash_port", positive_int, metavar="P",
                    help_="dashboard port (default: CALLSTREAM_DASH_PORT or 8050)")
    add_setting_arg(parser, "--warehouse", "warehouse", metavar="DIR",
                    help_="warehouse directory (default: CALLSTREAM_WAREHOUSE or var/warehouse)")
    add_kafka_args(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the pipeline until Ctrl-C/SIGTERM (exit 0) or until a part fails (exit 1)."""
    import signal
    import threading
    from pathlib import Path

    from callstream.errors import CliError
    from callstream.pipeline import Pipeline
    from callstream.supervisor import ChildFailed
    from dashboards import auth

    settings = settings_from_args(args)
    if not 0 < settings.dash_port < 65536:
        raise CliError(f"--port {settings.dash_port} is not a TCP port", exit_code=2)
    auth.check_bind(settings)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    pipeline = Pipeline(settings, Path(args.logs), stop, say, simulate=_simulate_args(args))
    try:
        pipeline.start()
        if not stop.is_set():
            say(f"dashboard at {pipeline.url} (Ctrl-C stops everything)")
            pipeline.supervisor.watch()
    except ChildFailed as exc:
        say(f"{exc}; stopping the rest")
        pipeline.stop()
        raise CliError(str(exc)) from None
    except BaseException:
        pipeline.stop()
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    pipeline.stop()
    say("stopped")
    return 0


def say(text: str) -> None:
    """One progress line on stdout, flushed (the URL line is what scripts wait for)."""
    print(f"callstream up: {text}", flush=True)


def _simulate_args(args: argparse.Namespace) -> list[str] | None:
    if args.no_simulate:
        return None
    return ["--calls", "0", "--rate", str(args.rate), "--outage-rate", str(args.outage_rate),
            "--portals", str(args.portals)]

