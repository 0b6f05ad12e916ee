"""``callstream export``: the billing CSV of contract v1 for a date range."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime, time, timedelta, timezone

from callstream.commands.common import add_setting_arg, settings_from_args

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?([Zz]|[+-]\d{2}:\d{2})")


def moment(text: str) -> date | datetime:
    """argparse type: ``YYYY-MM-DD`` (a day, read in ``--tz``) or an RFC 3339 time with any offset
    (``2026-11-01T00:00:00+03:00``, ``...Z``), as an aware UTC datetime."""
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"not a date (YYYY-MM-DD) or an RFC 3339 time (2026-11-01T00:00:00+03:00): {text[:60]!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        if offset in ("Z", "z"):
            zone = UTC
        else:
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError("offset out of range")
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                         int((fraction or "0").ljust(6, "0")), tzinfo=zone)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a valid time: {text[:60]!r}") from None
    return local.astimezone(UTC)


def zone(text: str) -> str:
    """argparse type: an IANA time zone (``Europe/Moscow``, ``UTC``)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"not an IANA time zone: {text[:60]!r}") from None
    return text


def resolve(bound: date | datetime, tz: str) -> datetime:
    """An export bound as a UTC instant: a date is 00:00 of that day in ``tz``."""
    if isinstance(bound, datetime):
        return bound
    from zoneinfo import ZoneInfo

    return datetime.combine(bound, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


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
                    "line ends, UTF-8, timestamps in UTC. Bounds are days (YYYY-MM-DD, read in --tz) "
                    "or RFC 3339 times with any offset.")
    parser.add_argument("--from", dest="start", type=moment, required=True, metavar="DATE",
                        help="first day (inclusive)")
    parser.add_argument("--to", dest="end", type=moment, required=True, metavar="DATE",
                        help="end (exclusive): --from 2026-11-01 --to 2026-12-01 is November")
    parser.add_argument("--portal", default=None, metavar="P", help="only this portal's calls")
    parser.add_argument("--tz", type=zone, default="UTC", metavar="ZONE",
                        help="read --from/--to days as days of this IANA zone (default UTC): a Moscow "
                             "portal's November is --from 2026-11-01 --to 2026-12-01 --tz Europe/Moscow")
    parser.add_argument("--dialect", choices=("contract", "excel"), default="contract",
                        help="contract: the exact CSV of the contract (default); excel: ';', a UTF-8 "
                             "byte order mark, and a decimal comma with --locale ru")
    parser.add_argument("--locale", choices=("en", "ru"), default=None,
                        help="number spelling of --dialect excel (default: CALLSTREAM_DASH_LOCALE)")
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

    from common.errors import CliError, UsageError
    from warehouse.export import ExportError, describe_missing, dialect, export_to_file, missing_billing_data
    from warehouse.layout import MANIFEST
    from warehouse.outfile import shown
    from warehouse.reader import Reader, WarehouseError

    args.start, args.end = resolve(args.start, args.tz), resolve(args.end, args.tz)
    if args.start >= args.end:
        raise UsageError(f"--from {args.start:%Y-%m-%dT%H:%M:%SZ} is not before --to "
                         f"{args.end:%Y-%m-%dT%H:%M:%SZ}: the range [from, to) is empty")
    settings = settings_from_args(args)
    args.style = dialect(args.dialect, args.locale or settings.dash_locale)
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
            rows = export_to_file(reader, Path(args.out), args.start, args.end, args.portal, style=args.style)
    except (ExportError, WarehouseError) as exc:
        raise CliError(str(exc)) from None
    print(f"callstream export: {rows} calls -> {shown(args.out)}", file=sys.stderr)
    return 0


def _to_stdout(reader, args: argparse.Namespace) -> int:
    import os
    import sys

    from warehouse.export import export_to_stdout

    try:
        export_to_stdout(reader, args.start, args.end, args.portal, style=args.style)
    except BrokenPipeError:
        # The reader of the pipe went away (`| head`): stop quietly with SIGPIPE's status.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0
