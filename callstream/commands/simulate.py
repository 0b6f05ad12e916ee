"""``callstream simulate``: the voice servers and the Controller, simulated, into call-events."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

from callstream.commands.common import (
    add_kafka_args,
    non_negative_float,
    non_negative_int,
    positive_int,
    probability,
    settings_from_args,
)
from common.config import CODECS
from common.errors import CliError, UsageError

_KNOB_FLAGS = (
    ("--outage-rate", "outage_rate", "share of time each portal's Controller is unreachable, "
                                     "its calls bypassed (default 0.02)"),
    ("--stale-key", "stale_key", "share of outages whose saved key is older than 26 h (default 0.15)"),
    ("--license-errors", "license_errors", "share of checked calls refused for the licence (default 0.003)"),
    ("--dev-copy", "dev_copy", "share of time a development copy steals a portal's calls as "
                               "config_not_found (default 0.01)"),
    ("--extranet", "extranet", "share of outbound calls attempted by extranet users, "
                               "forbidden (default 0.01)"),
    ("--recording", "recording", "share of portals that record calls (default 0.6)"),
    ("--lost-recordings", "lost_recordings", "share of recorded calls whose recording is never stored, "
                                             "raising recording_missing (default 0)"),
)
_FAULT_FLAGS = (
    ("--duplicates", "duplicates", "share of events sent twice, same event_id"),
    ("--shuffle", "shuffle", "share of calls whose events are delivered in random order"),
    ("--late-recordings", "late_recordings", "share of recording.stored held back 5-60 min of event time"),
    ("--malformed", "malformed", "after each message, chance of an extra malformed one (not JSON, "
                                 "invalid UTF-8, not an object, bad version, unknown type, missing/bad "
                                 "field, over 1 MiB); each is listed in --truth with its DLQ reason"),
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``simulate`` and its flags."""
    parser = sub.add_parser(
        "simulate", help="simulate voice servers and the Controller into call-events",
        description="Play realistic calls of Bitrix24-style portals (inbound, outbound, internal; "
                    "rented, operator, SIP lines; queues, forwarding, recordings, Controller "
                    "outages and licence errors) and send their contract-v1 events to the events "
                    "topic, key = call_id. Same --seed and --start give byte-identical events.")
    parser.add_argument("--calls", type=non_negative_int, default=10_000, metavar="N",
                        help="calls to simulate; 0 = until interrupted (default 10000)")
    parser.add_argument("--rate", type=non_negative_float, default=0.0, metavar="CALLS_PER_S",
                        help="calls per wall-clock second, event time follows wall time; 0 = as fast "
                             "as possible, event time follows business-hours arrivals (default 0)")
    parser.add_argument("--seed", default=None, metavar="S",
                        help="random seed (default: a fresh one, printed in the summary)")
    parser.add_argument("--start", default=None, metavar="TIME",
                        help="RFC 3339 UTC event time of the first call (default: now)")
    parser.add_argument("--portals", dest="sim_portals", type=positive_int, default=50, metavar="K",
                        help="number of portals (default 50)")
    parser.add_argument("--truth", default=None, metavar="FILE",
                        help="write the expected per-call facts and injected malformed messages "
                             "as JSON Lines (format: streams/simulator/truth.py)")
    parser.add_argument("--compression", dest="compression", choices=CODECS, default=None,
                        help="producer compression (default CALLSTREAM_COMPRESSION, else none: "
                             "fastest on a local broker)")
    knobs = parser.add_argument_group("world (fractions in [0, 1])")
    for flag, dest, text in _KNOB_FLAGS:
        knobs.add_argument(flag, dest=dest, type=probability, default=None, metavar="P", help=text)
    faults = parser.add_argument_group("delivery faults (probabilities in [0, 1], default 0)")
    for flag, dest, text in _FAULT_FLAGS:
        faults.add_argument(flag, dest=dest, type=probability, default=0.0, metavar="P", help=text)
    add_kafka_args(parser)
    parser.set_defaults(run=run)


def _start_us(text: str | None) -> int:
    from streams.domain.timefmt import parse_ts_us

    if text is None:
        return time.time_ns() // 1000
    start = parse_ts_us(text)
    if start is None:
        raise UsageError(f"--start: not an RFC 3339 UTC time (e.g. 2026-11-25T09:00:00Z): {text!r}")
    return start


def _world(args: argparse.Namespace) -> tuple[Any, Any]:
    from streams.simulator import Faults, Knobs

    knobs = {dest: getattr(args, dest) for _, dest, _ in _KNOB_FLAGS if getattr(args, dest) is not None}
    faults = {dest: getattr(args, dest) for _, dest, _ in _FAULT_FLAGS}
    return Knobs(**knobs), Faults(**faults)


def run(args: argparse.Namespace) -> int:
    """Simulate into the events topic; 0 when done, 130/143 when stopped by SIGINT/SIGTERM (flushed)."""
    from streams.simulator.feeder import FeedSpec
    from streams.simulator.session import Session

    settings = settings_from_args(args)
    seed = args.seed if args.seed is not None else str(int.from_bytes(os.urandom(6), "big"))
    knobs, faults = _world(args)
    _check_writable(args.truth)
    spec = FeedSpec(seed, args.sim_portals, _start_us(args.start), args.calls, knobs, faults, args.truth)
    session = Session(settings, spec, settings.compression)
    code = _run_interruptible(session, args.rate)
    print(session.summary(), flush=True)
    if session.failed:
        raise CliError(f"{session.failed} messages were not delivered; first error: {session.first_error}")
    return code


def _check_writable(path: str | None) -> None:
    """Fail before producing anything if the truth file cannot be written."""
    if path is None:
        return
    try:
        open(path, "wb").close()
    except OSError as exc:
        raise UsageError(f"--truth: cannot write {path}: {exc.strerror}") from None


def _run_interruptible(session: Any, rate: float) -> int:
    """Run until done; return 0, or 128 + the signal that stopped it.

    The first Ctrl-C (or SIGTERM) stops making calls, sends what was made and
    flushes; a second Ctrl-C aborts at once.
    """
    stopped: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        """First signal: stop gracefully; a later Ctrl-C raises KeyboardInterrupt."""
        stopped.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        session.run(rate, stop=lambda: bool(stopped), progress=sys.stderr.isatty())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 + stopped[0] if stopped else 0
