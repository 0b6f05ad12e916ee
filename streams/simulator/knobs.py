"""The simulator's knobs: what the simulated world does, and how delivery goes wrong.

``Knobs`` shape the calls themselves (they change the truth); ``Faults`` only
change how the same events are delivered (they never change the truth, except
for the malformed messages they add, each recorded with its DLQ reason).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


def _check_fractions(obj: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


@dataclass(frozen=True)
class Knobs:
    """Behaviour of portals, users and the Controller (fractions are in [0, 1])."""

    outage_rate: float = 0.02      # share of time a portal's Controller is unreachable
    stale_key: float = 0.15        # share of outages whose saved key is older than 26 h
    license_errors: float = 0.003  # share of checked paid calls refused for the licence
    dev_copy: float = 0.01         # share of time a development copy steals a portal's config
    extranet: float = 0.01         # share of outbound calls attempted by extranet users
    recording: float = 0.6         # share of portals whose administrator switched recording on
    peak_rate: float = 0.05        # calls per second per portal at the business-hours peak
    lost_recordings: float = 0.0   # share of recorded calls whose recording is never stored

    def __post_init__(self) -> None:
        _check_fractions(self, ("outage_rate", "stale_key", "license_errors", "dev_copy",
                                "extranet", "recording", "lost_recordings"))
        if not self.peak_rate > 0:
            raise ValueError(f"peak_rate must be > 0, got {self.peak_rate!r}")


@dataclass(frozen=True)
class Faults:
    """Delivery faults; each is a probability in [0, 1]."""

    duplicates: float = 0.0       # each event is sent a second time (same bytes, same event_id)
    shuffle: float = 0.0          # each call's events are delivered in a random order
    late_recordings: float = 0.0  # each recording.stored is held back 5-60 min of event time
    malformed: float = 0.0        # after each message, an extra malformed one is sent

    def __post_init__(self) -> None:
        _check_fractions(self, tuple(f.name for f in fields(self)))


NO_FAULTS = Faults()
DEFAULT_KNOBS = Knobs()
