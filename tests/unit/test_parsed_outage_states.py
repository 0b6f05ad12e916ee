"""The parsed portal states flag_outages keeps beside its table stay bounded in verdicts."""

from __future__ import annotations

import pytest

from streams.domain.outages import OutageState
from streams.flag_outages import ParsedStates

pytestmark = pytest.mark.unit


def _state(portal: str, verdicts: int) -> OutageState:
    return OutageState(portal, verdicts={f"call-{i}": (i, "checked") for i in range(verdicts)})


def test_a_state_is_returned_only_for_the_bytes_it_was_put_with():
    cache = ParsedStates()
    state = _state("p-1", 3)
    cache.put(b"p-1", b"blob-1", state)
    assert cache.get(b"p-1", b"blob-1") is state
    assert cache.get(b"p-1", bytes(bytearray(b"blob-1"))) is state  # equal bytes, another object
    assert cache.get(b"p-1", b"blob-2") is None  # replaced in the table since
    assert cache.get(b"p-2", b"blob-1") is None


def test_busy_portals_are_dropped_least_recently_used_first_once_over_the_verdict_budget():
    cache = ParsedStates(max_portals=1024, max_verdicts=10_000)
    for n in range(10):
        cache.put(f"p-{n}".encode(), b"x", _state(f"p-{n}", 4096))
        assert cache.verdicts <= 10_000 or len(cache) == 1
    assert len(cache) == 2  # two full portals fit in 10,000 verdicts, three do not
    assert cache.get(b"p-9", b"x") is not None and cache.get(b"p-8", b"x") is not None
    cache.get(b"p-8", b"x")  # p-8 used last: p-9 goes first now
    cache.put(b"p-10", b"x", _state("p-10", 4096))
    assert cache.get(b"p-9", b"x") is None and cache.get(b"p-8", b"x") is not None


def test_replacing_and_forgetting_keep_the_count_exact():
    cache = ParsedStates(max_portals=4, max_verdicts=1_000_000)
    for n in range(6):
        cache.put(f"p-{n}".encode(), b"x", _state(f"p-{n}", 10))
    assert len(cache) == 4 and cache.verdicts == 4 * 11
    cache.put(b"p-5", b"y", _state("p-5", 100))
    assert cache.verdicts == 3 * 11 + 101
    cache.forget(b"p-5")
    cache.forget(b"p-unknown")
    assert len(cache) == 3 and cache.verdicts == 3 * 11


def test_one_state_over_the_budget_is_still_kept_alone():
    cache = ParsedStates(max_portals=8, max_verdicts=100)
    cache.put(b"p-1", b"x", _state("p-1", 10))
    cache.put(b"p-2", b"x", _state("p-2", 500))
    assert len(cache) == 1 and cache.get(b"p-2", b"x") is not None
