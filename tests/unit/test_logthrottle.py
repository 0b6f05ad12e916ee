"""Identical log records are cut down to one per interval, and the count of the rest is told."""

from __future__ import annotations

import logging

import pytest

from streams.logthrottle import Throttle

pytestmark = pytest.mark.unit


def _record(msg: str, name: str = "aiokafka.conn") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, ("127.0.0.1",), None)


def test_repeats_are_dropped_within_the_interval_and_counted_after():
    now = [0.0]
    throttle = Throttle(5.0, clock=lambda: now[0])
    assert throttle.filter(_record("Unable connect to %s"))
    assert not any(throttle.filter(_record("Unable connect to %s")) for _ in range(1000))
    now[0] = 5.5
    again = _record("Unable connect to %s")
    assert throttle.filter(again)
    assert "[1000 like it in the last 5 s not shown]" in again.getMessage()


def test_different_messages_and_loggers_pass():
    throttle = Throttle(5.0, clock=lambda: 0.0)
    assert throttle.filter(_record("a %s"))
    assert throttle.filter(_record("b %s"))
    assert throttle.filter(_record("a %s", name="faust.consumer"))
