"""One replayed call in memory, and the two cores that advance it (used by ``replay.py``).

A call is held as the compiled core's state bytes (``blob``) while only that
core has touched it, and as a parsed :class:`CallState` once the Python core
has (then ``state`` is the newer of the two). Beside it, the fields of the
schedule that its timers need (``touched_at``, ``done``, ``recording_since``):
the compiled core's ``Step`` returns them, so a timer is checked without
parsing the state, and the state is parsed only when one is due.
"""

from __future__ import annotations

from typing import Any

import orjson

from streams.domain.calls import Outputs, check_recording, expire, expiry_due, recording_due
from streams.domain.outages import PortalSignal, signal_of
from streams.domain.state import CallState, state_from_bytes, state_to_bytes


class Call:
    """A call in memory: its state, its timers' fields, and what it produced since its
    outputs were last handed over."""

    __slots__ = ("blob", "state", "touched_at", "done", "recording_since", "cdr", "alerts", "counted",
                 "signal")

    def __init__(self, blob: bytes | None) -> None:
        self.blob = blob
        self.state: CallState | None = None
        self.touched_at = 0.0
        self.done = True
        self.recording_since: float | None = None
        self.cdr: bytes | None = None
        self.alerts: dict[str, bytes] = {}
        self.signal: tuple | None = None  # (portal, call, verdict, ts_us): the last one sent
        self.counted = False  # its first CDR was handed over
        if blob is not None:
            self.set_state(state_from_bytes(blob))
            self.counted = self.state.version > 0
            self.signal = _signal_tuple(signal_of(self.state))

    @property
    def exists(self) -> bool:
        return self.blob is not None or self.state is not None

    def python_state(self) -> CallState | None:
        """The parsed state (parsed from the bytes on first use)."""
        if self.state is None and self.blob is not None:
            self.state = state_from_bytes(self.blob)
        return self.state

    def state_bytes(self) -> bytes | None:
        """The state as bytes (what the compiled core and the on-disk store take)."""
        if self.state is not None:
            self.blob = state_to_bytes(self.state)
            self.state = None
        return self.blob

    def set_state(self, state: CallState) -> None:
        """A state the Python core made: it is the newest; the timers' fields follow it."""
        self.state, self.blob = state, None
        self.touched_at = state.touched_at
        self.done = expiry_due(state, 0.0) is None
        self.recording_since = recording_due(state, 0.0)

    def set_step(self, step: Any) -> None:
        """A ``Step`` of the compiled core that changed the call."""
        self.blob, self.state = step.state, None
        self.touched_at, self.done, self.recording_since = step.touched_at, step.done, step.recording_since

    def expiry_passed(self, now: float, incomplete_after: float) -> bool:
        """``calls.needs_expiry`` from the timers' fields (the same comparison)."""
        return self.exists and not self.done and now - self.touched_at >= incomplete_after

    def recording_passed(self, now: float, wait: float) -> bool:
        """``recording_due(state, wait) <= now`` from the timers' fields."""
        return self.recording_since is not None and self.recording_since + wait <= now

    def fires_between(self, start: float, end: float, incomplete_after: float, wait: float) -> bool:
        """A timer not yet due at ``start`` falls due by ``end``."""
        return ((self.expiry_passed(end, incomplete_after) and not self.expiry_passed(start, incomplete_after))
                or (self.recording_passed(end, wait) and not self.recording_passed(start, wait)))

    def take(self, cdrs: list[bytes], alerts: list, signal: tuple | None) -> None:
        """Keep the last CDR, each alert's last message and the last verdict sent."""
        # Exact-size copies: the bytes orjson returns keep its over-allocated buffer (16 KiB
        # for a CDR, measured), which held for every call of a partition was 20x their size.
        if cdrs:
            self.cdr = memoryview(cdrs[-1]).tobytes()
        for _portal, payload in alerts:
            self.alerts[orjson.loads(payload)["alert_id"]] = memoryview(payload).tobytes()
        if signal is not None:
            self.signal = tuple(signal)

    def take_outputs(self, outputs: Outputs) -> None:
        self.take(outputs.cdrs, outputs.alerts, _signal_tuple(outputs.signal))

    def run_timers(self, now: float, config: Any) -> None:
        """What the worker's sweep did for this call by ``now``: its expiry, its recording check."""
        if self.expiry_passed(now, config.incomplete_after):
            state, outputs = expire(self.python_state(), config.tariffs, config.rules)
            self.set_state(state)
            self.take_outputs(outputs)
        if self.recording_passed(now, config.recording_wait):
            state, outputs = check_recording(self.python_state(), config.tariffs, config.rules)
            self.set_state(state)
            self.take_outputs(outputs)

    def verdict(self) -> PortalSignal | None:
        """``signal_of`` the call's state, without parsing it when the last verdict sent says it.

        The verdict and its time only change through a step that sends them; the portal is
        the started event's, else the earliest event's, like the CDR's ``portal_id``.
        """
        if self.signal is None:
            return None
        portal, call_id, verdict, ts_us = self.signal
        if self.state is None and not (self.cdr is not None and b'"portal_id":' + orjson.dumps(portal)
                                       in self.cdr):
            self.python_state()
        if self.state is not None:
            return signal_of(self.state)
        return PortalSignal(portal, call_id, verdict, ts_us)


def _signal_tuple(signal: PortalSignal | None) -> tuple | None:
    return None if signal is None else (signal.portal_id, signal.call_id, signal.verdict, signal.ts_us)
