"""``callstream rerate``: re-rate a period's CDRs in the warehouse (SQL, no replay of events)."""

from __future__ import annotations

import argparse
import re
from datetime import date
from pathlib import Path

from callstream.commands.common import add_setting_arg, settings_from_args

_REPORT_ROWS = 10  # rows per totals table on the terminal; the saved report has them all


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "rerate", help="re-rate the CDRs of a period with a tariff table (no replay of events)",
        description="Re-rates, in DuckDB SQL over the warehouse's CDRs, every call started in the "
                    "period (UTC days --from to --to, both included) with --tariffs, exactly as the "
                    "worker rates; writes a new warehouse generation swapped in atomically (the sink "
                    "must be stopped) and prints and saves the same re-rating report as callstream "
                    "rebuild. Alerts are not re-derived (callstream rebuild does that).")
    add_setting_arg(parser, "--warehouse", "warehouse", metavar="DIR",
                    help_="the warehouse to re-rate (default: CALLSTREAM_WAREHOUSE or var/warehouse)")
    add_setting_arg(parser, "--tariffs", "tariffs", metavar="FILE",
                    help_="tariff CSV to rate with (default: CALLSTREAM_TARIFFS or the packaged table)")
    parser.add_argument("--from", dest="first", type=_day, required=True, metavar="YYYY-MM-DD",
                        help="first UTC day of call starts to re-rate")
    parser.add_argument("--to", dest="last", type=_day, required=True, metavar="YYYY-MM-DD",
                        help="last UTC day of call starts to re-rate (included)")
    parser.add_argument("--into", type=Path, default=None, metavar="PATH",
                        help="write the re-rated warehouse to PATH (a new directory) instead of "
                             "swapping it in; the live warehouse is left alone")
    parser.add_argument("--report", type=Path, default=None, metavar="DIR",
                        help="save rerating-report-<time>.{txt,csv} here (default: next to the warehouse)")
    parser.set_defaults(run=run)


def _day(text: str) -> date:
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text[:40]!r}")


def run(args: argparse.Namespace) -> int:
    import signal
    import sys
    import threading

    from common.errors import CliError, UsageError
    from streams.domain.rating import TariffError, load_tariffs
    from warehouse import rerating
    from warehouse.reader import WarehouseError
    from warehouse.rerate import RerateError, RerateOptions, rerate

    settings = settings_from_args(args)
    if args.last < args.first:
        raise UsageError(f"--to {args.last} is before --from {args.first}")
    if args.into is not None and (args.into.exists() or args.into.is_symlink()):
        raise UsageError(f"--into {args.into} already exists; give a new path")
    try:
        tariffs = load_tariffs(settings.tariffs_path)
    except TariffError as exc:
        raise UsageError(f"bad tariff file: {exc}") from None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    options = RerateOptions(args.first, args.last, args.into, args.report)
    try:
        result = rerate(Path(settings.warehouse), tariffs, options, stop,
                        header=(f"tariffs: {settings.tariffs_path}",))
    except (RerateError, WarehouseError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{exc.strerror or exc}: {exc.filename or settings.warehouse}") from None
    except Exception as exc:
        if type(exc).__module__.startswith("duckdb"):  # e.g. an amount beyond DECIMAL(18,2)
            raise CliError(f"re-rating failed: {str(exc).splitlines()[0][:300]}") from None
        raise
    print(rerating.render(result.report, [f"Re-rating of calls started {args.first} to {args.last}:"],
                          limit=_REPORT_ROWS), end="")
    print("report saved: " + ", ".join(str(p) for p in result.report_files))
    where = (f"swapped in at {result.location} -> {result.generation.name}"
             + (f" (previous generation kept at {result.previous})" if result.previous else "")
             if result.generation else f"written to {result.location}")
    rate = result.calls / result.rating_seconds if result.rating_seconds else 0.0
    print(f"callstream rerate: {result.calls:,} calls re-rated (rating {result.rating_seconds:.2f} s, "
          f"{rate:,.0f} CDRs/s; {result.seconds:.1f} s in all); {where}", file=sys.stderr)
    return 0
