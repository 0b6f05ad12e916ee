"""``callstream notify``: deliver alerts to people; status, silences and acknowledgements from the shell."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

from callstream.commands.common import add_kafka_args, add_setting_arg, settings_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``notify`` and its subcommands (none: run the service)."""
    parser = sub.add_parser(
        "notify", help="deliver alerts to people (HTTP, mail, chat, Bitrix24); silences, acknowledgements",
        description="Without a subcommand: the long-running service that consumes alerts and delivers every "
                    "distinct (alert_id, state) once to each channel its rules route it to "
                    "(CALLSTREAM_NOTIFY_RULES), and evaluates the threshold rules over the warehouse. "
                    "Stop with Ctrl-C or SIGTERM; kill -9 is safe (it resumes from the deliveries topic).")
    _common(parser)
    add_setting_arg(parser, "--rules", "notify_rules", metavar="FILE",
                    help_="rules file, TOML (default: CALLSTREAM_NOTIFY_RULES)")
    parser.add_argument("--log-level", default=None, choices=("debug", "info", "warning", "error"),
                        help="default: CALLSTREAM_LOG_LEVEL or warning")
    parser.set_defaults(run=run)
    commands = parser.add_subparsers(dest="notify_command", metavar="SUBCOMMAND",
                                     parser_class=type(parser))
    status = commands.add_parser("status", help="deliveries, failures, channels and silences")
    _common(status)
    status.add_argument("--json", action="store_true", help="the published summary as JSON")
    status.add_argument("--ledger", action="store_true",
                        help="recount from the deliveries topic itself (slower; works while notify is down)")
    status.set_defaults(run=run_status)
    silence = commands.add_parser("silence", help="stop delivering alerts of a portal and/or type for a time")
    _common(silence)
    silence.add_argument("--portal", default=None, metavar="P", help="portal_id (default: every portal)")
    silence.add_argument("--type", dest="alert_type", default=None, metavar="T",
                         help="alert type (default: every type)")
    silence.add_argument("--for", dest="duration", required=True, metavar="D", help="how long: 90m, 2h, 1d, 1h30m")
    silence.add_argument("--reason", required=True, help="why (shown with the silence)")
    silence.add_argument("--by", default=None, help="who (default: the login name)")
    silence.set_defaults(run=run_silence)
    unsilence = commands.add_parser("unsilence", help="lift a silence now")
    _common(unsilence)
    unsilence.add_argument("silence_id", metavar="ID")
    unsilence.add_argument("--by", default=None, help="who (default: the login name)")
    unsilence.set_defaults(run=run_unsilence)
    ack = commands.add_parser("ack", help="acknowledge an alert (its open state is no longer sent)")
    _common(ack)
    ack.add_argument("alert_id", metavar="ALERT_ID")
    ack.add_argument("--by", default=None, help="who (default: the login name)")
    ack.set_defaults(run=run_ack)
    check = commands.add_parser("rules", help="check a rules file and print its routes")
    _common(check)
    check.add_argument("file", nargs="?", default=None, help="default: CALLSTREAM_NOTIFY_RULES")
    check.set_defaults(run=run_rules)


def _common(parser: argparse.ArgumentParser) -> None:
    add_kafka_args(parser)


def run(args: argparse.Namespace) -> int:
    """The service, until SIGINT/SIGTERM."""
    import logging
    import signal
    import threading

    from common.kafka_clients import require_codecs
    from notify.evaluator import start_evaluator
    from notify.service import Service
    from notify.topics import ensure

    settings = settings_from_args(args)
    level = (args.log_level or settings.log_level).upper()
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kafka", "apprise"):  # one line per connection, per message
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    require_codecs("notify")
    rules = load_rules_or_fail(settings.notify_rules)
    if not rules.routes:
        logging.getLogger("callstream.notify").warning(
            "notify: no rules (CALLSTREAM_NOTIFY_RULES): alerts are read and recorded, nothing is delivered")
    ensure(settings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    evaluator = start_evaluator(settings, stop)
    service = Service(settings, rules, bypass_fallback=evaluator.bypasses if evaluator else None)
    service.run(stop)
    return 0


def load_rules_or_fail(path: str | None):
    """The rules, or a one-line CliError naming the file and line."""
    from common.errors import CliError
    from notify.channels import check_channel
    from notify.rules import RulesError, load_rules

    try:
        return load_rules(path, check_channel)
    except RulesError as exc:
        raise CliError(f"bad rules file: {exc}", exit_code=2) from None


def run_rules(args: argparse.Namespace) -> int:
    """Check a rules file; print its routes (channels with secrets masked)."""
    from notify.channels import display

    settings = settings_from_args(args)
    rules = load_rules_or_fail(args.file or settings.notify_rules)
    for route in rules.routes:
        print(f"{route.index}. {route.name}: types {_names(route.types)}, portals {_names(route.portals)}, "
              f"states {', '.join(sorted(route.states))}, group_s {route.group_s}, min_hits {route.min_hits} "
              f"within {route.window_s} s{', continue' if route.cont else ''}")
        for url in route.channels:
            print(f"     -> {display(url)}")
    print(f"{len(rules.routes)} route(s) in {rules.source}")
    return 0


def _names(names) -> str:
    return ", ".join(sorted(names)) if names else "*"


def run_status(args: argparse.Namespace) -> int:
    """Print the status (exit 1 when a delivery failed or a channel is failing)."""
    import orjson

    from notify.status import read_status
    from notify.status_text import ledger_summary, status_lines

    settings = settings_from_args(args)
    summary = ledger_summary(settings) if args.ledger else read_status(settings)
    if args.json:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        for line in status_lines(settings, summary, from_ledger=args.ledger):
            print(line)
    if summary is None:
        return 1
    failing = any(c.get("failing") for c in summary.get("channels", []))
    return 1 if failing or summary.get("totals", {}).get("failed") else 0


def _who(given: str | None) -> str:
    if given:
        return given
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name: say where it came from
        return "shell"


def _publish(args: argparse.Namespace, build: Callable[[], tuple[bytes, bytes]]) -> bytes:
    """Publish the action event ``build()`` makes on the actions topic; its key. A refused action
    (notify.actions.ActionError) is a one-line usage error."""
    from common.errors import CliError
    from notify.actions import ActionError
    from notify.publish import publish_action

    settings = settings_from_args(args)
    try:
        key, value = build()
    except ActionError as exc:
        raise CliError(str(exc), exit_code=2) from None
    publish_action(settings, key, value)
    return key


def run_silence(args: argparse.Namespace) -> int:
    """Publish a silence."""
    from notify.actions import parse_duration, silence_event

    key = _publish(args, lambda: silence_event(args.portal, args.alert_type, parse_duration(args.duration),
                                               args.reason, _who(args.by)))
    print(f"silenced: {key.decode()} (lift it with: callstream notify unsilence {key.decode()})")
    return 0


def run_unsilence(args: argparse.Namespace) -> int:
    """Publish the lifting of a silence."""
    from notify.actions import unsilence_event

    _publish(args, lambda: unsilence_event(args.silence_id, _who(args.by)))
    print(f"lifted: {args.silence_id}")
    return 0


def run_ack(args: argparse.Namespace) -> int:
    """Publish an acknowledgement."""
    from notify.actions import ack_event

    _publish(args, lambda: ack_event(args.alert_id, _who(args.by)))
    print(f"acknowledged: {args.alert_id}")
    return 0
