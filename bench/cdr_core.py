"""Throughput of the pure CDR core on one core: fold, state bytes, CDR assembly, JSON.

Calls are realistic 10-event calls (uuid event ids, a queue, a recording) rated
against the packaged tariff table; each figure is the best of ``--repeat``
timeit runs.

    python bench/cdr_core.py [--calls 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import timeit
import uuid
from decimal import Decimal
from importlib import resources

from streams.domain import events as E
from streams.domain.cdr import build_cdr, cdr_from_state
from streams.domain.cdr_json import cdr_to_json
from streams.domain.rating import load_tariffs
from streams.domain.state import fold, state_from_bytes, state_to_bytes

T0 = 1_795_600_800_000_000  # 2026-11-25T10:00:00Z
NUMBERS = ["+74951234567", "+79161234567", "+77011234567", "+375291234567", "+4915112345678",
           "+12125550100", "+78121234567", "+33612345678"]


def one_call(rng: random.Random, n: int) -> list[E.Event]:
    """The ten events of one outbound call, shuffled as a broker might deliver them."""
    call, at = f"call-{n}", lambda s: T0 + n * 1_000_000 + int(s * 1_000_000)

    def event(kind: str, s: float, data: object) -> E.Event:
        return E.Event(str(uuid.UUID(int=rng.getrandbits(128))), kind, call, "b24-portal-1",
                       E.SOURCE_OF_TYPE[kind], "voice-1", at(s), data)

    talk = rng.uniform(1, 600)
    events = [
        event("call.started", 0, E.CallStarted("outbound", rng.choice(["operator", "rented"]), "user:17",
                                                rng.choice(NUMBERS), None, None, "17")),
        event("controller.requested", 0.05, E.ControllerRequested()),
        event("controller.replied", 0.1, E.ControllerReplied("ok", "cfg-1")),
        event("call.offered", 0.2, E.CallOffered("17", 1, "employee", 1)),
        event("call.offer_missed", 5, E.CallOfferMissed("17", 1)),
        event("call.offered", 5.1, E.CallOffered("18", 2, "queue", 3)),
        event("call.answered", 8, E.CallAnswered("18")),
        event("call.forwarded", 4, E.CallForwarded("+74951111111", "no_answer")),
        event("call.ended", 8 + talk, E.CallEnded("normal", "caller")),
        event("recording.stored", 9 + talk, E.RecordingStored(f"https://records.example.com/{call}.mp3",
                                                              int(talk * 16000), Decimal(f"{talk:.3f}"), "mp3")),
    ]
    rng.shuffle(events)
    return events


def main() -> None:
    """Print events/s and calls/s for each stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(42)
    calls = [one_call(rng, n) for n in range(args.calls)]
    n_events = sum(map(len, calls))
    tariffs = load_tariffs(str(resources.files("streams") / "tariffs" / "default.csv"))
    states = []
    for events in calls:
        state = None
        for event in events:
            state, _ = fold(state, event)
        states.append(state)
    blobs = [state_to_bytes(s) for s in states]

    def fold_and_bytes() -> None:
        for events in calls:
            state = None
            for event in events:
                state, _ = fold(state, event)
                state_to_bytes(state)

    def load_fold_store() -> None:  # the worker with a byte-valued state store
        for events in calls:
            blob = None
            for event in events:
                state, _ = fold(None if blob is None else state_from_bytes(blob), event)
                blob = state_to_bytes(state)

    stages = [
        ("fold + state_to_bytes", fold_and_bytes, n_events, "events"),
        ("state_from_bytes + fold + state_to_bytes", load_fold_store, n_events, "events"),
        ("cdr_from_state + cdr_to_json", lambda: [cdr_to_json(cdr_from_state(s, tariffs), 1) for s in states],
         len(calls), "calls"),
        ("build_cdr (set form) + cdr_to_json", lambda: [cdr_to_json(build_cdr(c, tariffs), 1) for c in calls],
         len(calls), "calls"),
    ]
    for name, work, count, unit in stages:
        best = min(timeit.repeat(work, number=1, repeat=args.repeat))
        print(f"{name:45s} {count / best:12,.0f} {unit}/s  {best / count * 1e6:7.2f} us each")
    print(f"state bytes per 10-event call: mean {sum(map(len, blobs)) / len(blobs):.0f}, max {max(map(len, blobs))}")


if __name__ == "__main__":
    main()
