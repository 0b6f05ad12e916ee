"""``callstream up``: the whole pipeline in one command, stopped cleanly by Ctrl-C.

SIGINT, SIGTERM and SIGHUP (the terminal closed) all mean "stop": the first
one starts the ordered stop, a second one ends its grace periods (SIGKILL at
once). The handlers stay in place until every child is stopped, so no signal
can cut the stop short. Progress lines are news only: once stdout cannot be
written (``| tee`` killed by the same Ctrl-C, a closed terminal) they go to
/dev/null and the stop carries on.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from callstream.commands.common import (
    add_kafka_args,
    add_setting_arg,
    non_negative_float,
    positive_int,
    probability,
    settings_from_args,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``up`` and its flags."""
    parser = sub.add_parser(
        "up", help="run everything: broker, topics, worker, sink, simulator, dashboard",
        description="Start, in order and each once it is ready: the local Kafka broker (or use the one "
                    "at CALLSTREAM_BOOTSTRAP if it answers), the topics, the worker, the sink, the "
                    "simulator (continuous calls with occasional Controller outages) and the dashboard; "
                    "print the dashboard's URL. Ctrl-C (or SIGTERM, or SIGHUP) stops them all in reverse "
                    "order (a second Ctrl-C kills what is left at once) and leaves no process behind "
                    "(the broker only if this command started it). Logs of the parts go to --logs.")
    parser.add_argument("--rate", type=non_negative_float, default=10.0, metavar="CALLS_PER_S",
                        help="simulated calls per second (default 10)")
    parser.add_argument("--outage-rate", type=probability, default=0.05, metavar="P",
                        help="share of time each portal's Controller is unreachable (default 0.05)")
    parser.add_argument("--portals", dest="sim_portals", type=positive_int, default=20, metavar="K",
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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run(args: argparse.Namespace) -> int:
    """Run the pipeline until SIGINT/SIGTERM/SIGHUP (exit 0) or until a part fails (exit 1)."""
    import threading
    from pathlib import Path

    from callstream.pipeline import Pipeline
    from common.errors import CliError
    from dashboards import auth

    settings = settings_from_args(args)
    if not 0 < settings.dash_port < 65536:
        raise CliError(f"--port {settings.dash_port} is not a TCP port", exit_code=2)
    auth.check_bind(settings)
    stop, hurry = threading.Event(), threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        if stop.is_set():
            hurry.set()
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        pipeline = Pipeline(settings, Path(args.logs), stop, say, simulate=_simulate_args(args), hurry=hurry)
        try:
            failure = _run_until_stopped(pipeline, stop)
        finally:
            pipeline.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure is not None:
        raise CliError(failure)
    say("stopped")
    return 0


def _run_until_stopped(pipeline, stop) -> str | None:
    """Start everything and watch it until a stop request (None) or a failed part (its one-line reason)."""
    from callstream.supervisor import ChildFailed

    try:
        pipeline.start()
        if not stop.is_set():
            say(f"dashboard at {pipeline.url} (Ctrl-C stops everything)")
            pipeline.supervisor.watch()
    except ChildFailed as exc:
        say(f"{exc}; stopping the rest")
        return str(exc)
    return None


def say(text: str) -> None:
    """One progress line on stdout, flushed (the URL line is what scripts wait for).

    Never raises: if stdout is gone (a closed pipe: EPIPE, since Python ignores
    SIGPIPE; a closed terminal: EIO), stdout is pointed at /dev/null, so that this
    and every later line, and the interpreter's final flush, are dropped quietly.
    """
    try:
        print(f"callstream up: {text}", flush=True)
    except (OSError, ValueError):
        _stdout_to_devnull()


def _stdout_to_devnull() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # no stdout at all: print() has nothing left to fail on


def _simulate_args(args: argparse.Namespace) -> list[str] | None:
    if args.no_simulate:
        return None
    return ["--calls", "0", "--rate", str(args.rate), "--outage-rate", str(args.outage_rate),
            "--portals", str(args.sim_portals)]

