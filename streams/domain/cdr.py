"""CDRs (contract v1, sections "Delivery", "CDR"): the set form and the assembly.

A CDR is a function of the SET of distinct events of a call. Every "earliest"
or "latest" is decided by ``(ts_us, event_id)`` (ties on the timestamp broken
by the lexicographic event id), never by arrival order:

- ``call.started``, ``call.answered``, ``call.ended``, ``controller.bypassed``:
  the earliest one counts; ``user_id`` is the earliest answer's, else started's.
- ``forwarded_to`` and ``controller_result``: the latest ``call.forwarded`` /
  ``controller.replied``.
- ``recording_urls``: distinct urls ordered by the ``ts`` of their first
  recording event, then by url, the first ``MAX_RECORDING_URLS`` (100) of them
  (contract v1.1); ``recording_bytes``/``recording_s`` sum over every distinct
  recording event (one url stored twice under two event ids counts twice;
  bytes saturate at 2**63 - 1, the warehouse's BIGINT);
  ``recording_s`` is the exact sum rounded half-up to milliseconds.
- contract v1.1: only a call's first ``max_events`` distinct events in log
  order count (the worker sends the rest to the DLQ as ``call_too_large``).
- ``portal_id``: the started event's, else the earliest event's.

Durations are exact microsecond differences in seconds with 3 decimals
(``timefmt.seconds_between``; a negative skew counts as 0). An ``incomplete``
CDR fills what can be computed and leaves the rest None: ``ring_s`` needs
started and (answered or ended); ``talk_s`` is ended - answered, 0 when ended
and never answered, else None; ``duration_s`` needs started and ended; it is
rated only when ``talk_s`` is known (otherwise the row is still looked up for
region/rate/currency when ``call.started`` is known, billing 0). Without
``call.started`` nothing can be looked up: rating fields null, ``unrated``
False (the ``incomplete`` status already flags such a call).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from streams.domain.events import Event
from streams.domain.rating import NOT_RATED, Rating, TariffTable, rate_call
from streams.domain.shared import MAX_CALL_EVENTS, MAX_RECORDING_URLS, STATUS_BY_CAUSE
from streams.domain.state import (
    EARLIEST_FIELD,
    EXACT,
    INT64_MAX,
    LATEST_FIELD,
    NO_SECONDS,
    CallState,
    First,
    Replied,
    is_complete,
    record_of,
    staleness,
)
from streams.domain.timefmt import seconds_between

_MS = Decimal("0.001")


class Cdr(NamedTuple):
    """One CDR without its version; fields in the contract's order, times in UTC microseconds.

    Immutable as a NamedTuple: built once per CDR version on the worker's hot
    path, where a frozen dataclass's 32 ``object.__setattr__`` calls cost more
    than the rating.
    """

    call_id: str
    portal_id: str
    direction: str | None
    line: str | None
    from_: str | None
    to: str | None
    line_number: str | None
    shown_number: str | None
    extranet: bool | None
    user_id: str | None
    started_at_us: int | None
    answered_at_us: int | None
    ended_at_us: int | None
    ring_s: Decimal | None
    talk_s: Decimal | None
    duration_s: Decimal | None
    status: str
    hangup_cause: str | None
    queue_attempts: int
    forwarded_to: str | None
    controller: str
    controller_result: str | None
    region: str | None
    rate_per_min: Decimal | None
    billed_s: int
    cost: Decimal
    currency: str | None
    recording_urls: tuple[str, ...]
    recording_bytes: int
    recording_s: Decimal
    events: int
    unrated: bool  # talked (t > 0) and no tariff row: for the alert rules, not in the JSON


def build_cdr(events: Iterable[Event], tariffs: TariffTable, *, incomplete: bool = False,
              max_events: int = MAX_CALL_EVENTS) -> Cdr:
    """The CDR of one call from its events in log order; a repeated ``event_id``: the first
    copy wins, and only the first ``max_events`` distinct events count.

    Raises ValueError when ``call.started`` or ``call.ended`` is missing and
    ``incomplete`` is False (only the worker's timeout may emit such a call).
    """
    return cdr_from_state(state_of_events(events, max_events), tariffs, incomplete=incomplete)


def state_of_events(events: Iterable[Event], max_events: int = MAX_CALL_EVENTS) -> CallState:
    """The call state of a set of events, each winner chosen over the whole set (no fold).

    The set is the first ``max_events`` distinct events in the given (log) order.
    """
    distinct: dict[str, Event] = {}
    for event in events:
        if event.event_id not in distinct and len(distinct) < max_events:
            distinct[event.event_id] = event
    if not distinct:
        raise ValueError("a CDR needs at least one event")
    call_ids = {event.call_id for event in distinct.values()}
    if len(call_ids) != 1:
        raise ValueError(f"events of several calls: {sorted(call_ids)}")
    records: dict[str, list] = {}
    attempts: set[int] = set()
    for event in distinct.values():
        records.setdefault(event.type, []).append(record_of(event))
        if event.type == "call.offered":
            attempts.add(event.data.attempt)
    earliest = min(distinct.values(), key=lambda e: (e.ts_us, e.event_id))
    winners: dict[str, Any] = {name: min(records.get(kind, ()), default=None)
               for kind, name in EARLIEST_FIELD.items()}
    winners.update({name: max(records.get(kind, ()), default=None)
                    for kind, name in LATEST_FIELD.items()})
    first_of_result: dict[str, Replied] = {}
    for reply in sorted(records.get("controller.replied", ()), reverse=True):
        first_of_result[reply.result] = reply  # the earliest is written last
    recordings = records.get("recording.stored", ())
    first_ts: dict[str, int] = {}
    for rec in recordings:
        first_ts[rec.url] = min(rec.ts_us, first_ts.get(rec.url, rec.ts_us))
    seconds = NO_SECONDS
    for rec in recordings:
        seconds = EXACT.add(seconds, rec.seconds)
    return CallState(
        call_id=call_ids.pop(), event_ids=tuple(sorted(distinct)),
        first=First(earliest.ts_us, earliest.event_id, earliest.portal_id), **winners,
        replied_first=tuple(first_of_result[r] for r in sorted(first_of_result)),
        attempts=tuple(sorted(attempts)),
        urls=tuple(sorted((ts, url) for url, ts in first_ts.items()))[:MAX_RECORDING_URLS],
        rec_bytes=min(sum(rec.bytes for rec in recordings), INT64_MAX), rec_seconds=seconds,
        stalest=min(records.get("controller.bypassed", ()), key=staleness, default=None))


def cdr_from_state(state: CallState, tariffs: TariffTable, *, incomplete: bool = False) -> Cdr:
    """Assemble the CDR of a call state; ``incomplete=True`` gives status ``incomplete``.

    Raises ValueError when the call lacks started or ended and ``incomplete`` is False.
    """
    if not incomplete and not is_complete(state):
        raise ValueError(f"call {state.call_id!r} lacks call.started or call.ended; "
                         "only an incomplete CDR can be built")
    s, a, e = state.started, state.answered, state.ended
    ring_end = a if a is not None else e
    ring = seconds_between(s.ts_us, ring_end.ts_us) if s and ring_end else None
    if e is None:
        talk = None
    else:
        talk = seconds_between(a.ts_us, e.ts_us) if a else Decimal("0.000")
    rating = _rating(state, tariffs, talk)
    return Cdr(
        call_id=state.call_id, portal_id=s.portal_id if s else state.first.portal_id,
        direction=s and s.direction, line=s and s.line, from_=s and s.from_, to=s and s.to,
        line_number=s and s.line_number, shown_number=s and s.shown_number,
        extranet=s and s.extranet, user_id=a.user_id if a else (s and s.user_id),
        started_at_us=s and s.ts_us, answered_at_us=a and a.ts_us, ended_at_us=e and e.ts_us,
        ring_s=ring, talk_s=talk,
        duration_s=seconds_between(s.ts_us, e.ts_us) if s and e else None,
        status=_status(state, incomplete), hangup_cause=e and e.cause,
        queue_attempts=len(state.attempts), forwarded_to=state.forwarded and state.forwarded.to,
        controller=_controller(state), controller_result=state.replied and state.replied.result,
        region=rating.region, rate_per_min=rating.rate_per_min, billed_s=rating.billed_s,
        cost=rating.cost, currency=rating.currency,
        recording_urls=tuple(url for _ts, url in state.urls), recording_bytes=state.rec_bytes,
        recording_s=state.rec_seconds.quantize(_MS, rounding=ROUND_HALF_UP, context=EXACT),
        events=len(state.event_ids),
        unrated=rating.unrated)


def _status(state: CallState, incomplete: bool) -> str:
    if incomplete:
        return "incomplete"
    if state.answered is not None:
        return "answered"
    assert state.ended is not None  # a complete call (cdr_from_state checked)
    return STATUS_BY_CAUSE[state.ended.cause]


def _controller(state: CallState) -> str:
    if state.bypassed is not None:
        return "bypassed"
    return "checked" if state.replied is not None else "none"


def _rating(state: CallState, tariffs: TariffTable, talk_s: Decimal | None) -> Rating:
    s = state.started
    if s is None:
        return NOT_RATED
    return rate_call(tariffs, line=s.line, direction=s.direction, to=s.to,
                     line_number=s.line_number, started_at_us=s.ts_us, talk_s=talk_s)
