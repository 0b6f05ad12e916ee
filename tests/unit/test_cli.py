"""CLI behaviour every subcommand shares: --help works, bad arguments are one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from callstream.cli import COMMANDS, main

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: callstream" in capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_flag_is_one_line_and_exit_2(command):
    done = subprocess.run([sys.executable, "-m", "callstream.cli", command, "--no-such-flag"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"callstream {command}: error:")
    assert "Traceback" not in done.stderr


def test_missing_subcommand_is_a_usage_error():
    done = subprocess.run([sys.executable, "-m", "callstream.cli"], capture_output=True, text=True)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1


def test_bad_environment_is_one_line():
    done = subprocess.run([sys.executable, "-m", "callstream.cli", "topics", "list"],
                          capture_output=True, text=True,
                          env={"CALLSTREAM_EVENTS_PARTITIONS": "zero", "PATH": ""})
    assert done.returncode == 2
    assert done.stderr.strip() == ("callstream topics: error: CALLSTREAM_EVENTS_PARTITIONS='zero': "
                                   "invalid literal for int() with base 10: 'zero'")


@pytest.mark.parametrize("argv", [["up", "--portals", "5"], ["simulate", "--portals", "5"]])
def test_a_flag_of_the_simulator_is_not_a_setting_of_the_same_name(argv):
    """``--portals K`` (simulated portals) must not become CALLSTREAM_PORTALS (the portals file)."""
    from callstream.cli import build_parser
    from callstream.commands.common import settings_from_args

    args = build_parser().parse_args(argv)
    assert settings_from_args(args).portals is None
