"""The incremental form of a CDR: a compact per-call state and its fold.

``fold(state, event)`` keeps, for every CDR field, only the candidate that
wins over the *set* of distinct events seen so far: the earliest or latest by
``(ts_us, event_id)``, a sorted set of offered attempts, and of the
recordings only what the CDR shows: the first ``MAX_RECORDING_URLS`` distinct
URLs by (ts of their earliest recording, url) and the sums of bytes and
seconds over every distinct recording (contract v1.1), so a call's state is
bounded whatever it receives. Event ids are kept sorted, so a state is a
canonical function of the set of distinct events it has seen (plus the
worker's bookkeeping): any arrival order and any redelivery fold to an equal
state, and ``streams.domain.cdr.build_cdr`` over the same set yields the same CDR.

"First copy wins": a redelivered ``event_id`` is ignored even when its payload
differs, so the copy folded first is the one that counts.

A ``CallState`` is an immutable NamedTuple (copying one is four times
cheaper than ``dataclasses.replace`` on a frozen dataclass, and the fold runs
once per event); ``fold`` returns a new one. The worker's bookkeeping
(``version``, ``partition``, ``touched_at``, ``emitted``) rides along
untouched by ``fold``; set it with ``updated(state, {"version": 2, ...})``.
``emitted`` holds JSON values only and is replaced, never mutated in place.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Mapping
from decimal import Context, Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson

from streams.domain.events import Event
from streams.domain.shared import MAX_RECORDING_URLS, STATE_FORMAT


class First(NamedTuple):
    """The earliest event of the call: its portal is the fallback when started is missing."""

    ts_us: int
    event_id: str
    portal_id: str


class Started(NamedTuple):
    """The earliest ``call.started`` (the alert rules read ``line`` and ``extranet``)."""

    ts_us: int
    event_id: str
    portal_id: str
    direction: str
    line: str
    from_: str
    to: str
    line_number: str | None
    shown_number: str | None
    user_id: str | None
    extranet: bool
    record: bool


class Answered(NamedTuple):
    """The earliest ``call.answered``."""

    ts_us: int
    event_id: str
    user_id: str


class Ended(NamedTuple):
    """The earliest ``call.ended``."""

    ts_us: int
    event_id: str
    cause: str
    by: str


class Forwarded(NamedTuple):
    """The latest ``call.forwarded``."""

    ts_us: int
    event_id: str
    to: str


class Replied(NamedTuple):
    """A ``controller.replied``: the latest one, or the earliest of one result."""

    ts_us: int
    event_id: str
    result: str


class Bypassed(NamedTuple):
    """The earliest ``controller.bypassed``."""

    ts_us: int
    event_id: str
    reason: str
    key_saved_at_us: int


class Recording(NamedTuple):
    """One distinct ``recording.stored`` event."""

    ts_us: int
    event_id: str
    url: str
    bytes: int
    seconds: Decimal


NO_EMITTED: Mapping[str, Any] = MappingProxyType({})  # shared, so read-only
# The contract lets ``seconds`` be any finite double (up to ~1.8e308, down to
# 5e-324): 1000 digits keep a sum of such values exact before its one rounding.
EXACT = Context(prec=1000)
NO_SECONDS = Decimal(0)
# recording_bytes saturates at the largest BIGINT (the warehouse's column; each
# recording's bytes is at most that, so a sum of non-negative values saturated
# at it is still order-independent).
INT64_MAX = 2**63 - 1


class CallState(NamedTuple):
    """What a call's distinct events determine, plus the worker's bookkeeping."""

    call_id: str
    event_ids: tuple[str, ...]  # sorted, distinct
    first: First
    started: Started | None = None
    answered: Answered | None = None
    ended: Ended | None = None
    forwarded: Forwarded | None = None
    replied: Replied | None = None  # the latest
    replied_first: tuple[Replied, ...] = ()  # the earliest of each result, sorted by result
    bypassed: Bypassed | None = None
    attempts: tuple[int, ...] = ()  # distinct call.offered attempts, ascending
    # The first MAX_RECORDING_URLS distinct recording urls as (ts of the url's
    # earliest recording, url), ascending; and sums over every distinct recording
    # (bytes saturating at INT64_MAX).
    urls: tuple[tuple[int, str], ...] = ()
    rec_bytes: int = 0
    rec_seconds: Decimal = NO_SECONDS  # exact (EXACT context); rounded once, in the CDR
    stalest: Bypassed | None = None  # the bypass with the oldest key (stale_key alert)
    version: int = 0  # the last CDR version the worker emitted
    partition: int | None = None
    touched_at: float = 0.0  # worker wall clock of the call's last event
    emitted: Mapping[str, Any] = NO_EMITTED  # worker's alert digests


_FIELD_INDEX = {name: i for i, name in enumerate(CallState._fields)}
_new_tuple = tuple.__new__


def updated(state: CallState, changes: dict[str, Any]) -> CallState:
    """``state`` with some fields replaced (``_replace`` minus its generic machinery:
    the fold's profile showed ``_replace``/``_make`` as its largest single cost)."""
    values = list(state)
    for name, value in changes.items():
        values[_FIELD_INDEX[name]] = value
    return _new_tuple(CallState, values)


_RECORD_OF: dict[str, Callable[[Event], tuple]] = {
    "call.started": lambda e: Started(
        e.ts_us, e.event_id, e.portal_id, e.data.direction, e.data.line, e.data.from_, e.data.to,
        e.data.line_number, e.data.shown_number, e.data.user_id, e.data.extranet, e.data.record),
    "call.answered": lambda e: Answered(e.ts_us, e.event_id, e.data.user_id),
    "call.ended": lambda e: Ended(e.ts_us, e.event_id, e.data.cause, e.data.by),
    "call.forwarded": lambda e: Forwarded(e.ts_us, e.event_id, e.data.to),
    "controller.replied": lambda e: Replied(e.ts_us, e.event_id, e.data.result),
    "controller.bypassed": lambda e: Bypassed(e.ts_us, e.event_id, e.data.reason,
                                              e.data.key_saved_at_us),
    "recording.stored": lambda e: Recording(e.ts_us, e.event_id, e.data.url, e.data.bytes,
                                            e.data.seconds),
}
# Records start with (ts_us, event_id) and event ids are distinct within a
# call, so comparing two records compares exactly (ts_us, event_id).
EARLIEST_FIELD = {"call.started": "started", "call.answered": "answered",
                  "call.ended": "ended", "controller.bypassed": "bypassed"}
LATEST_FIELD = {"call.forwarded": "forwarded", "controller.replied": "replied"}


def record_of(event: Event) -> Any:
    """The state record an event contributes, or None for the types only counted."""
    make = _RECORD_OF.get(event.type)
    return None if make is None else make(event)


def _changes(state: CallState, event: Event) -> dict[str, Any]:
    """The fields an event (with a new id) changes, each keeping its winner over the set."""
    record = record_of(event)
    changes: dict[str, Any] = {}
    name = EARLIEST_FIELD.get(event.type)
    if name is not None:
        current = getattr(state, name)
        if current is None or record < current:
            changes[name] = record
        if event.type == "controller.bypassed" and (
                state.stalest is None or staleness(record) < staleness(state.stalest)):
            changes["stalest"] = record
        return changes
    name = LATEST_FIELD.get(event.type)
    if name is not None:
        current = getattr(state, name)
        if current is None or record > current:
            changes[name] = record
    if event.type == "controller.replied":
        mine = [r for r in state.replied_first if r.result == record.result]
        if not mine or record < mine[0]:
            others = [r for r in state.replied_first if r.result != record.result]
            changes["replied_first"] = tuple(sorted(others + [record], key=_result))
    elif event.type == "call.offered" and event.data.attempt not in state.attempts:
        changes["attempts"] = tuple(sorted(state.attempts + (event.data.attempt,)))
    elif event.type == "recording.stored":
        changes["rec_bytes"] = min(state.rec_bytes + record.bytes, INT64_MAX)
        changes["rec_seconds"] = EXACT.add(state.rec_seconds, record.seconds)
        changes["urls"] = first_urls(state.urls, record.ts_us, record.url)
    return changes


def first_urls(urls: tuple[tuple[int, str], ...], ts_us: int, url: str) -> tuple[tuple[int, str], ...]:
    """``urls`` with a recording of ``url`` at ``ts_us`` added; still the first MAX_RECORDING_URLS.

    A url's key is the ts of its earliest recording, then the url. A url cut
    off here can never belong back: the kept keys only get smaller, and a later
    recording of the same url is judged by its own ts, which is its earliest
    known one exactly when it is smaller than the cut-off one.
    """
    for i, (known_ts, known_url) in enumerate(urls):
        if known_url == url:
            if known_ts <= ts_us:
                return urls
            urls = urls[:i] + urls[i + 1:]
            break
    kept = list(urls)
    insort(kept, (ts_us, url))
    return tuple(kept[:MAX_RECORDING_URLS])


def staleness(bypass: Bypassed) -> tuple[int, int, str]:
    """Sort key of bypasses: the oldest key (largest age) first, then earliest (ts_us, event_id)."""
    # Oldest key first (largest age), then earliest (ts_us, event_id): a total order.
    return (bypass.key_saved_at_us - bypass.ts_us, bypass.ts_us, bypass.event_id)


def _result(reply: Replied) -> str:
    return reply.result


def fold(state: CallState | None, event: Event) -> tuple[CallState, bool]:
    """Fold one event in; ``changed`` is False when its ``event_id`` was already seen."""
    if state is None:
        state = CallState(event.call_id, (), First(event.ts_us, event.event_id, event.portal_id))
    elif event.call_id != state.call_id:
        raise ValueError(f"event {event.event_id!r} of call {event.call_id!r} "
                         f"folded into call {state.call_id!r}")
    ids = state.event_ids
    at = bisect_left(ids, event.event_id)
    if at < len(ids) and ids[at] == event.event_id:
        return state, False
    changes = _changes(state, event)
    changes["event_ids"] = ids[:at] + (event.event_id,) + ids[at:]
    if (event.ts_us, event.event_id) < (state.first.ts_us, state.first.event_id):
        changes["first"] = First(event.ts_us, event.event_id, event.portal_id)
    return updated(state, changes), True


def is_complete(state: CallState) -> bool:
    """Both ``call.started`` and ``call.ended`` have been seen: a CDR can be emitted."""
    return state.started is not None and state.ended is not None





# --- compact serialisation ---------------------------------------------------
# A positional JSON array (no field names) in which every event id inside a
# record is written as its index into the sorted ``event_ids``: each id is
# stored once, and ~10 events of a call take a few hundred bytes.

# 3: recordings as the first urls and sums (contract v1.1); 2 is still read.
_READABLE = (2, STATE_FORMAT)


def _pack(record: tuple | None, index: dict[str, int]) -> list | None:
    if record is None:
        return None
    return [record[0], index[record[1]], *record[2:]]


def state_to_bytes(state: CallState) -> bytes:
    """The state as compact JSON bytes (``state_from_bytes`` reverses it exactly)."""
    index = {event_id: i for i, event_id in enumerate(state.event_ids)}
    return orjson.dumps([
        STATE_FORMAT, state.call_id, state.event_ids, _pack(state.first, index),
        _pack(state.started, index), _pack(state.answered, index), _pack(state.ended, index),
        _pack(state.forwarded, index), _pack(state.replied, index),
        [_pack(r, index) for r in state.replied_first], _pack(state.bypassed, index),
        state.attempts,
        [[list(u) for u in state.urls], state.rec_bytes, str(state.rec_seconds)],
        _pack(state.stalest, index), state.version, state.partition, state.touched_at,
        state.emitted if type(state.emitted) is dict else dict(state.emitted),
    ])


def state_from_bytes(data: bytes) -> CallState:
    """Rebuild a state from ``state_to_bytes``; corrupt input raises ValueError."""
    try:
        raw = orjson.loads(data)
        if not isinstance(raw, list) or len(raw) != 18 or raw[0] not in _READABLE:
            raise ValueError(f"not a call state of format {STATE_FORMAT}")
        ids = tuple(raw[2])
        urls, rec_bytes, rec_seconds = (_recordings_of_format_2(raw[12]) if raw[0] == 2 else
                                        (tuple((ts, url) for ts, url in raw[12][0]), raw[12][1],
                                         Decimal(raw[12][2])))
        return CallState(
            raw[1], ids, _unpack(First, raw[3], ids), _unpack(Started, raw[4], ids),
            _unpack(Answered, raw[5], ids), _unpack(Ended, raw[6], ids),
            _unpack(Forwarded, raw[7], ids), _unpack(Replied, raw[8], ids),
            tuple(_unpack(Replied, r, ids) for r in raw[9]), _unpack(Bypassed, raw[10], ids),
            tuple(raw[11]), urls, rec_bytes, rec_seconds,
            _unpack(Bypassed, raw[13], ids), raw[14], raw[15], float(raw[16]), raw[17])
    except (IndexError, KeyError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"corrupt call state: {exc}") from exc


def _recordings_of_format_2(packed: list) -> tuple[tuple[tuple[int, str], ...], int, Decimal]:
    """Format 2 kept every recording ([ts, id index, url, bytes, seconds]): fold them into format 3's."""
    urls: tuple[tuple[int, str], ...] = ()
    total_bytes, total_s = 0, NO_SECONDS
    for ts_us, _index, url, size, secs in packed:
        urls = first_urls(urls, ts_us, url)
        total_bytes += size
        total_s = EXACT.add(total_s, Decimal(secs))
    return urls, total_bytes, total_s


def _unpack(kind: type, packed: list | None, ids: tuple[str, ...]) -> Any:
    if packed is None:
        return None
    return kind(packed[0], ids[packed[1]], *packed[2:])
