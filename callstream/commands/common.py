"""Flags shared by several subcommands, and their mapping onto Settings."""

from __future__ import annotations

import argparse
from typing import Any

from common.config import Settings

# argparse dest -> Settings field; only flags the user actually gave override.
_KAFKA_FLAGS = {
    "bootstrap": "--bootstrap",
    "topic_events": "--topic-events",
    "topic_dlq": "--topic-dlq",
    "topic_cdrs": "--topic-cdrs",
    "topic_alerts": "--topic-alerts",
}


def add_kafka_args(parser: argparse.ArgumentParser) -> None:
    """--bootstrap and the topic names (env: CALLSTREAM_BOOTSTRAP, CALLSTREAM_TOPIC_*)."""
    group = parser.add_argument_group("kafka")
    for dest, flag in _KAFKA_FLAGS.items():
        group.add_argument(flag, dest=dest, default=None, metavar="NAME" if dest != "bootstrap" else "HOST:PORT")


def add_setting_arg(parser: argparse.ArgumentParser, flag: str, name: str, type_: Any = str,
                    help_: str | None = None, metavar: str | None = None) -> None:
    """A flag that overrides the Settings field ``name`` when given."""
    parser.add_argument(flag, dest=name, type=type_, default=None, help=help_, metavar=metavar)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with every flag the user gave winning."""
    overrides = {
        field: getattr(args, field)
        for field in Settings.__dataclass_fields__
        if getattr(args, field, None) is not None
    }
    return Settings.from_env(**overrides)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def probability(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text!r}")
    return value
