"""The ``callstream`` command: one parser, one module per subcommand.

Command modules live in :mod:`callstream.commands`; each exposes
``add_parser(subparsers)`` and ``run(args) -> int`` and imports its heavy
dependencies (faust, duckdb, dash) inside ``run`` so that ``--help`` and
argument errors stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from common.config import ConfigError
from common.errors import CliError

# Order is the order shown in --help.
COMMANDS = (
    "broker",
    "topics",
    "simulate",
    "worker",
    "sink",
    "export",
    "rebuild",
    "rerate",
    "dashboard",
    "users",
    "notify",
    "up",
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")

    def subparser_of(self, command: str) -> argparse.ArgumentParser:
        """The parser of one subcommand."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action.choices[command]
        return self


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="callstream",
        description="Call analytics pipeline: Kafka events -> CDRs and alerts -> DuckDB -> dashboard.",
    )
    from callstream import __version__

    parser.add_argument("--version", action="version", version=f"callstream {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"callstream.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Reported by the subcommand's parser, so the message names the subcommand.
        parser.subparser_of(args.command).error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.run(args) or 0)
    except (CliError, ConfigError) as exc:
        code = getattr(exc, "exit_code", 2)
        print(f"callstream {args.command}: error: {exc}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print(f"callstream {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        # Users get one line; developers set CALLSTREAM_DEBUG=1 for the traceback.
        if os.environ.get("CALLSTREAM_DEBUG"):
            raise
        print(f"callstream {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
