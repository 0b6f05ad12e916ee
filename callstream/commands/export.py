"""``callstream export``: the billing CSV of contract v1 for a date range."""

from __future__ import annotations

import argparse
from datetime import date, datetime, timezone

from callstream.commands.common import add_setting_arg, settings_from_args


def moment(text: str) -> datetime:
    """argparse type: ``YYYY-MM-DD`` (00:00 UTC) or an RFC 3339 UTC timestamp."""
    from streams.domain.timefmt import parse_ts_us, us_to_datetime

    try:
        day = date.fromisoformat(text)
    except ValueError:
        ts_us = parse_ts_us(text)
        if ts_us is None:
            raise argparse.ArgumentTypeError(
                f"not a date (YYYY-MM-DD) or an RFC 3339 UTC timestamp: {text!r}") from None
        return us_to_datetime(ts_us)
    if len(text) != 10:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}")
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def out_path(text: str) -> str:
    """argparse type: a path that can be a file name (a NUL byte can reach ``main``, never a file)."""
    if "\x00" in text:
        raise argparse.ArgumentTypeError("the path contains a NUL byte")
    return text


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export", help="billing CSV of the calls started in [--from, --to)",
        description="One row per call (its latest CDR) whose started_at is in [FROM, TO), ordered "
                    "by started_at then call_id, in the contract's columns; RFC 4180 with CRLF "
                    "line ends, UTF-8. Dates are UTC days (YYYY-MM-DD) or RFC 3339 timestamps.")
    parser.add_argument("--from", dest="start", type=moment, required=True, metavar="DATE",
                        help="first day (inclusive)")
    parser.add_argument("--to", dest="end", type=moment, required=True, metavar="DATE",
                        help="end (exclusive): --from 2026-11-01 --to 2026-12-01 is November")
    parser.add_argument("--portal", default=None, metavar="P", help="only this portal's calls")
    parser.add_argument("--out", type=out_path, default=None, metavar="FILE",
                        help="write to FILE atomically (complete or not at all), keeping its owner and "
                             "mode if it exists (a symbolic link or a device is refused); default stdout")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="export even when files holding calls of the range are quarantined or "
                             "unreadable (a warning names them); without it the export refuses")
    add_setting_arg(parser, "--warehouse", "warehouse", metavar="DIR",
                    help_="warehouse directory (default: CALLSTREAM_WAREHOUSE or var/warehouse)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from callstream.errors import CliError, UsageError
    from warehouse.export import ExportError, describe_missing, export_to_file, missing_billing_data
    from warehouse.layout import MANIFEST
    from warehouse.outfile import shown
    from warehouse.reader import Reader, WarehouseError

    if args.start >= args.end:
        raise UsageError(f"--from {args.start:%Y-%m-%dT%H:%M:%SZ} is not before --to "
                         f"{args.end:%Y-%m-%dT%H:%M:%SZ}: the range [from, to) is empty")
    settings = settings_from_args(args)
    root = Path(settings.warehouse)
    if not (root / MANIFEST).is_file():
        raise CliError(f"no warehouse at {root} (is `callstream sink` running with this "
                       "CALLSTREAM_WAREHOUSE?)")
    try:
        # Chunks of 100k calls fit well within this; DuckDB would spill beyond it, not grow.
        # Every cdrs file is checksummed before use: a bill must not print silently damaged rows.
        with Reader(root, memory_limit="256MB", checksums=("cdrs",)) as reader:
            missing = missing_billing_data(reader, args.start, args.end)
            if missing and not args.allow_incomplete:
                raise CliError(describe_missing(missing) + "; recover them with `callstream rebuild`, or "
                               "pass --allow-incomplete to export without them")
            if missing:
                print(f"callstream export: warning: {describe_missing(missing)}; exported without them",
                      file=sys.stderr, flush=True)
            if args.out is None:
                return _to_stdout(reader, args)
            rows = export_to_file(reader, Path(args.out), args.start, args.end, args.portal)
    except (ExportError, WarehouseError) as exc:
        raise CliError(str(exc)) from None
    print(f"callstream export: {rows} calls -> {shown(args.out)}", file=sys.stderr)
    return 0


def _to_stdout(reader, args: argparse.Namespace) -> int:
    import os
    import sys

    from warehouse.export import export_to_stdout

    try:
        export_to_stdout(reader, args.start, args.end, args.portal)
    except BrokenPipeError:
        # The reader of the pipe went away (`| head`): stop quietly with SIGPIPE's status.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0
