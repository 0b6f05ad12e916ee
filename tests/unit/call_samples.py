"""Builders of one call's events shared by the unit tests of the domain core.

``ev`` builds an :class:`Event` directly (the validator is tested elsewhere);
``call_scenarios`` and ``deliveries`` are hypothesis strategies for the events
of one call and any order of their delivery; ``batched`` cuts a delivery into
batches; ``TARIFFS`` is the packaged tariff table and ``SIMPLE_TARIFFS`` a
one-row table whose costs are easy to compute by hand.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

import streams
from streams.domain import events as E
from streams.domain.rating import load_tariffs, parse_tariffs
from streams.domain.timefmt import parse_ts_us

T0 = parse_ts_us("2026-11-25T10:00:00Z")

_PAYLOAD_DEFAULTS: dict[str, tuple[type, dict[str, Any]]] = {
    "call.started": (E.CallStarted, dict(direction="outbound", line="operator", from_="user:u1",
                                         to="+74951234567", line_number=None, shown_number=None,
                                         user_id="u1", extranet=False, record=False)),
    "controller.requested": (E.ControllerRequested, {}),
    "controller.replied": (E.ControllerReplied, dict(result="ok", config_id="cfg-1")),
    "controller.bypassed": (E.ControllerBypassed, dict(reason="timeout", key_saved_at_us=T0 - 3_600_000_000)),
    "call.offered": (E.CallOffered, dict(user_id="u1", attempt=1, rule="queue", rings=3)),
    "call.offer_missed": (E.CallOfferMissed, dict(user_id="u1", attempt=1)),
    "call.forwarded": (E.CallForwarded, dict(to="voicemail", reason="no_answer")),
    "call.answered": (E.CallAnswered, dict(user_id="u1")),
    "recording.stored": (E.RecordingStored, dict(url="https://rec.example/1.mp3", bytes=1000,
                                                 seconds=Decimal("10"), format="mp3")),
    "call.ended": (E.CallEnded, dict(cause="normal", by="caller")),
}


def ev(kind: str, eid: str, at_s: float | Decimal = 0, *, call: str = "call-1", portal: str = "p1",
       at_us: int | None = None, **data: Any) -> E.Event:
    """An event of ``kind`` at ``T0 + at_s`` seconds (or ``at_us``), payload defaults overridden by ``data``."""
    cls, defaults = _PAYLOAD_DEFAULTS[kind]
    ts = at_us if at_us is not None else T0 + int(Decimal(str(at_s)) * 1_000_000)
    return E.Event(eid, kind, call, portal, E.SOURCE_OF_TYPE[kind], "node-1", ts, cls(**{**defaults, **data}))


# --- a strategy for the events of ONE call --------------------------------------

# A few fixed instants make timestamp ties (decided by event_id) common.
_TIES = [T0, T0 + 1, T0 + 1_000_000, T0 + 59_999_000, T0 + 60_000_000, T0 + 60_001_000]
_times = st.one_of(st.sampled_from(_TIES), st.integers(T0 - 5_000_000, T0 + 400_000_000))
_phones = st.sampled_from(["+74951234567", "+79161234567", "+77011234567", "+76123456789",
                           "+78001234567", "+4915112345678", "+12125550100", "+999123", "+37529123456"])
_numbers = _phones | st.sampled_from(["user:u7", "voicemail", "sip-office-1", "office"])
_users = st.sampled_from(["u1", "u2", "u3"])

_PAYLOADS = {
    "call.started": st.builds(E.CallStarted, st.sampled_from(sorted(E.DIRECTIONS)), st.sampled_from(sorted(E.LINES)),
                              _numbers, _numbers, st.none() | _numbers, st.none() | _phones,
                              st.none() | _users, st.booleans(), st.booleans()),
    "controller.requested": st.just(E.ControllerRequested()),
    "controller.replied": st.builds(E.ControllerReplied, st.sampled_from(sorted(E.CONTROLLER_RESULTS)),
                                    st.none() | st.just("cfg-1")),
    "controller.bypassed": st.builds(E.ControllerBypassed, st.sampled_from(sorted(E.BYPASS_REASONS)), _times),
    "call.offered": st.builds(E.CallOffered, _users, st.integers(1, 4), st.sampled_from(sorted(E.OFFER_RULES)),
                              st.integers(1, 5)),
    "call.offer_missed": st.builds(E.CallOfferMissed, _users, st.integers(1, 4)),
    "call.forwarded": st.builds(E.CallForwarded, _phones | st.just("voicemail"),
                                st.sampled_from(sorted(E.FORWARD_REASONS))),
    "call.answered": st.builds(E.CallAnswered, _users),
    "recording.stored": st.builds(E.RecordingStored, st.sampled_from(["https://r/1.mp3", "https://r/2.wav", "http://r/3"]),
                                  st.integers(0, 10**6), st.decimals(0, 7200, places=4, allow_nan=False),
                                  st.sampled_from(["mp3", "wav"])),
    "call.ended": st.builds(E.CallEnded, st.sampled_from(sorted(E.END_CAUSES)), st.sampled_from(sorted(E.END_BY))),
}
_OPTIONAL = sorted(set(_PAYLOADS) - {"call.started", "call.ended"})


@st.composite
def call_scenarios(draw: Any, complete: bool | None = None) -> list[E.Event]:
    """Distinct events of one call: 0-2 started, 0-2 ended (>= 1 each when ``complete``), the rest optional."""
    least = 1 if complete else 0
    kinds = ["call.started"] * draw(st.integers(least, 2)) + ["call.ended"] * draw(st.integers(least, 2))
    kinds += draw(st.lists(st.sampled_from(_OPTIONAL), max_size=10))
    if not kinds:
        kinds = [draw(st.sampled_from(_OPTIONAL))]
    # Short ids from a small alphabet: ties on ts are then broken by comparable ids.
    ids = draw(st.lists(st.text("abcXYZ019-", min_size=1, max_size=4), min_size=len(kinds),
                        max_size=len(kinds), unique=True))
    portals = st.sampled_from(["p1", "p2"])
    return [E.Event(eid, kind, "call-1", draw(portals), E.SOURCE_OF_TYPE[kind], "node-1", draw(_times),
                    draw(_PAYLOADS[kind]))
            for eid, kind in zip(ids, kinds)]


@st.composite
def deliveries(draw: Any, events: list[E.Event]) -> list[E.Event]:
    """Any order of ``events`` with any number of exact redeliveries mixed in."""
    extra = draw(st.lists(st.sampled_from(events), max_size=len(events)))
    return draw(st.permutations(events + extra))


DEFAULT_CSV = Path(streams.__file__).parent / "tariffs" / "default.csv"
TARIFFS = load_tariffs(DEFAULT_CSV)


SIMPLE_TARIFFS = parse_tariffs(
    "line,direction,prefix,region,rate_per_min,connect_fee,increment_s,min_s,currency,valid_from\n"
    "operator,outbound,7,Russia,1.50,0.30,60,0,RUB,2026-01-01T00:00:00Z\n")

TWO_LINE_TARIFFS = parse_tariffs(
    "line,direction,prefix,region,rate_per_min,connect_fee,increment_s,min_s,currency,valid_from\n"
    "operator,outbound,7,Russia,1.50,0.30,60,0,RUB,2026-01-01T00:00:00Z\n"
    "rented,inbound,7495,Moscow rented,0.50,0.00,1,0,RUB,2026-01-01T00:00:00Z\n")


@st.composite
def batched(draw: Any, events: list) -> list[list]:
    """Any order of ``events`` with redeliveries, cut into 1..n consecutive batches."""
    extra = draw(st.lists(st.sampled_from(events), max_size=len(events)))
    delivered = draw(st.permutations(events + extra))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(delivered) - 1)), max_size=len(delivered))))
    bounds = [0] + [c for c in cuts if c < len(delivered)] + [len(delivered)]
    return [delivered[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
