"""The simulator's parts: numbers, the Controller's life, arrivals, stamps, pacing, knobs."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from streams.domain.timefmt import format_ts_ms, parse_ts_us
from streams.simulator import Knobs, Simulator, numbers
from streams.simulator.arrivals import Arrivals, share_at
from streams.simulator.controller import ControllerLife
from streams.simulator.pacing import fast, paced
from streams.simulator.stamps import day_path, format_ts, uuid4_hex

pytestmark = pytest.mark.unit

E164 = re.compile(r"\+[0-9]{3,15}")
HOUR_US = 3600 * 1_000_000
START_US = parse_ts_us("2026-11-24T06:00:00Z")


def test_numbers_are_e164_of_their_plan_length():
    rng = random.Random(1)
    zones = Counter()
    for _ in range(5000):
        zone, number = numbers.destination(rng)
        zones[zone] += 1
        assert E164.fullmatch(number), number
        if zone == "russia":
            assert number.startswith("+7") and len(number) == 12 and number[2] in "3489"
        if number.startswith("+77") or number.startswith("+76"):
            assert zone == "cis"  # Kazakhstan shares +7
        if zone == "usa":
            assert number.startswith("+1") and len(number) == 12 and number[5] in "23456789"
    assert zones["russia"] > zones["cis"] > zones["europe"] > zones["usa"] > 0
    assert all(E164.fullmatch(numbers.caller(rng)) for _ in range(500))
    assert all(E164.fullmatch(numbers.rented_number(rng)[1]) for _ in range(500))


def test_controller_outages_take_their_share_of_time():
    life = ControllerLife(random.Random(2), Knobs(outage_rate=0.05, license_errors=0.0, dev_copy=0.0),
                          "cfg-1", 3 * HOUR_US, START_US)
    verdicts = [life.verdict(START_US + i * 10_000_000) for i in range(60_000)]  # a week, every 10 s
    bypassed = [v for v in verdicts if v.outcome == "bypassed"]
    assert 0.03 < len(bypassed) / len(verdicts) < 0.07
    assert {v.reason for v in bypassed} == {"timeout", "unreachable", "error"}
    assert all(v.config_id == "cfg-1" for v in verdicts if v.outcome == "ok")
    assert {v.outcome for v in verdicts} == {"ok", "bypassed"}


def test_keys_are_saved_daily_at_the_portal_time_or_stale():
    life = ControllerLife(random.Random(3), Knobs(outage_rate=0.2, stale_key=0.5), "cfg-2",
                          2 * HOUR_US, START_US)
    ages = []
    for i in range(20_000):
        t = START_US + i * 30_000_000
        verdict = life.verdict(t)
        if verdict.outcome == "bypassed":
            ages.append((t - verdict.key_saved_at_us) / HOUR_US)
            saved_time_of_day = (verdict.key_saved_at_us % (24 * HOUR_US)) / HOUR_US
            assert 2 - 0.03 <= saved_time_of_day <= 2  # the daily save, up to 90 s early
    assert any(a > 27 for a in ages) and any(a < 24 for a in ages)
    assert not any(25.1 < a <= 27 for a in ages)


def test_dev_copies_and_licences_refuse_calls():
    life = ControllerLife(random.Random(4), Knobs(outage_rate=0.0, dev_copy=0.3, license_errors=0.05),
                          "cfg-3", 0, START_US)
    outcomes = Counter(life.verdict(START_US + i * 5_000_000).outcome for i in range(20_000))
    assert outcomes.keys() == {"ok", "config_not_found", "license_error"}
    assert 0.1 < outcomes["config_not_found"] / 20_000 < 0.35


def test_no_outages_when_the_rate_is_zero():
    life = ControllerLife(random.Random(5), Knobs(outage_rate=0.0, dev_copy=0.0, license_errors=0.0),
                          "cfg-4", 0, START_US)
    assert {life.verdict(START_US + i * 60_000_000).outcome for i in range(5000)} == {"ok"}


def test_arrivals_follow_moscow_business_hours():
    assert share_at(parse_ts_us("2026-11-24T08:00:00Z")) == 1.0  # Tuesday 11:00 MSK
    assert share_at(parse_ts_us("2026-11-24T00:00:00Z")) == 0.02  # 03:00 MSK
    assert share_at(parse_ts_us("2026-11-28T08:00:00Z")) == 0.2  # Saturday
    arrivals = Arrivals(random.Random(6), 1.0, parse_ts_us("2026-11-23T21:00:00Z"))
    hours = Counter()
    t = arrivals.next_us()
    assert t == parse_ts_us("2026-11-23T21:00:00Z")
    while t < parse_ts_us("2026-11-24T21:00:00Z"):
        hours[(t // HOUR_US + 3) % 24] += 1
        t = arrivals.next_us()
    assert 3000 < hours[11] < 4200  # the peak: about 3,600 an hour
    assert hours[3] < 150
    assert 36_000 < sum(hours.values()) < 42_000  # 10.86 peak-hours of shares a weekday


def test_format_ts_matches_the_domain_and_ids_are_uuid4():
    rng = random.Random(7)
    for _ in range(20_000):
        t = rng.randrange(0, 4_000_000_000_000_000)
        assert format_ts(t) == format_ts_ms(t)
    assert day_path(parse_ts_us("2026-01-05T23:59:59Z")) == "2026/01/05"
    ids = {uuid4_hex(rng) for _ in range(1000)}
    assert len(ids) == 1000 and all(re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", i) for i in ids)


def test_knobs_are_checked():
    with pytest.raises(ValueError, match="outage_rate"):
        Knobs(outage_rate=2.0)
    with pytest.raises(ValueError, match="peak_rate"):
        Knobs(peak_rate=0.0)
    with pytest.raises(ValueError, match="portals"):
        Simulator(1, 0, START_US)


class FakeClock:
    """Wall time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_paced_calls_follow_the_wall_clock():
    clock = FakeClock()
    sim = Simulator(1, 5, START_US)
    starts = []
    for message in paced(sim, 20, 2.0, START_US, random.Random(1), lambda: False, clock, clock.sleep):
        if b'"call.started"' in message.value:
            starts.append((parse_ts_us(message.value.split(b'"ts":"')[1][:24].decode()), clock.now))
    assert len(starts) == 20 and sim.stats.calls == 20
    assert starts[0][0] == START_US
    for event_us, wall in starts:
        # Released when the fake wall clock reached its event time (within a 50 ms sleep step).
        assert abs((event_us - START_US) / 1e6 - (wall - 100.0)) < 0.06
    assert 5.0 < clock.now - 100.0 < 20.0  # 20 calls at 2 per second


def test_pacing_stops_on_request_and_drains():
    sim = Simulator(2, 5, START_US)
    made = []
    stream = fast(sim, 0, lambda: len(made) >= 50)
    for message in stream:
        made.append(message)
    assert sim.pending == 0 and sim.stats.calls >= 1
    assert len(made) == sim.stats.messages
