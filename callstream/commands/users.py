"""``callstream users``: the dashboard's accounts (add, list, remove, passwd).

Passwords come from a terminal prompt (never echoed) or, for scripts, one line of
standard input with ``--password-stdin``; never from an argument (a command line is
visible to every user of the machine).
"""

from __future__ import annotations

import argparse

from callstream.commands.common import add_setting_arg, settings_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``users`` and its actions."""
    parser = sub.add_parser(
        "users", help="dashboard accounts: add, list, remove, passwd",
        description="Accounts of the dashboard. Roles: operator (every portal), portal_admin (its "
                    "portals, CSV downloads), viewer (its portals, no CSV, no recordings); "
                    "--listen-recordings grants listening to recordings. Once any account exists, "
                    "the dashboard asks everyone to log in, on loopback too.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("operator", "portal_admin", "viewer"))
    add.add_argument("--portal", action="append", default=[], metavar="P",
                     help="a portal the account sees (repeat for several; not for operators)")
    add.add_argument("--listen-recordings", action="store_true", help="may open call recordings")
    add.add_argument("--tz", default=None, metavar="ZONE", help="the user's IANA time zone")
    add.add_argument("--locale", default=None, choices=("en", "ru"), help="the user's language")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    listing = actions.add_parser("list", help="accounts, roles and portals (never passwords)")
    remove = actions.add_parser("remove", help="delete an account (its sessions end)")
    remove.add_argument("name")
    passwd = actions.add_parser("passwd", help="set a new password (the account's sessions end)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    for p in (add, listing, remove, passwd):
        add_setting_arg(p, "--accounts", "accounts", metavar="FILE",
                        help_="account store (default: CALLSTREAM_ACCOUNTS or accounts.sqlite in the warehouse)")
        add_setting_arg(p, "--warehouse", "warehouse", metavar="DIR",
                        help_="warehouse directory (default: CALLSTREAM_WAREHOUSE or var/warehouse)")
    parser.set_defaults(run=run)


def read_password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or typed twice at a prompt that does not echo."""
    import getpass
    import sys

    from common.errors import UsageError

    if from_stdin:
        line = sys.stdin.readline(4096)
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password: pass --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UsageError("the two passwords differ")
    return first


def run(args: argparse.Namespace) -> int:
    """Carry out one action; a refused value is a one-line error (exit 2), nothing half-written."""
    import sys

    from common.errors import CliError, UsageError
    from dashboards.accounts import AccountError, Store, check_name

    settings = settings_from_args(args)
    store = Store(settings.accounts_path)
    try:
        if args.action == "list":
            for user in store.users():
                portals = ",".join(user.portals) or "*"
                rights = "listen_recordings" if user.can_listen else "-"
                print(f"{user.name}\t{user.role}\t{portals}\t{rights}\t{user.tz or '-'}\t{user.locale or '-'}")
            return 0
        check_name(args.name)
        if args.action == "add":
            if args.tz:
                _check_zone(args.tz)
            store.add(args.name, args.role, tuple(args.portal), read_password(args.password_stdin),
                      listen=args.listen_recordings, tz=args.tz, locale=args.locale)
            print(f"callstream users: added {args.name} ({args.role})", file=sys.stderr)
        elif args.action == "remove":
            if not store.remove(args.name):
                raise CliError(f"no user {args.name}")
            print(f"callstream users: removed {args.name}", file=sys.stderr)
        elif args.action == "passwd":
            if store.get(args.name) is None:
                raise CliError(f"no user {args.name}")
            store.set_password(args.name, read_password(args.password_stdin))
            print(f"callstream users: new password for {args.name}", file=sys.stderr)
    except AccountError as exc:
        raise UsageError(str(exc)) from None
    return 0


def _check_zone(zone: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from common.errors import UsageError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--tz: not an IANA time zone: {zone[:60]!r}") from None
