"""The simulated world: portals, their users, lines, routing rules and servers.

Portal sizes are heavy-tailed (a few big companies, many small ones): portal
``n`` gets weight ``1 / n``, and its share of calls, users and numbers follows
that weight. Ids follow the contract's id charset: ``p-<n>``, ``u-<n>``,
``sip-<n>``, ``cfg-<n>-<hex>``.
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate

from streams.simulator import numbers
from streams.simulator.knobs import Knobs

VOICE_NODES = ("vs-msk-01", "vs-msk-02", "vs-msk-03", "vs-spb-01", "vs-spb-02", "vs-ams-01")
CONTROLLER_NODES = ("ctl-01", "ctl-02", "ctl-03")
# Controllers are other machines: their clocks disagree a little with the voice servers'.
CONTROLLER_SKEW_US = {"ctl-01": 0, "ctl-02": -40_000, "ctl-03": 25_000}
RING_US = 5_000_000  # one ring cycle (1 s tone, 4 s pause)


@dataclass(frozen=True, slots=True)
class Route:
    """How an inbound line routes: a rule, the users it offers to, and what follows."""

    rule: str                 # "employee", "crm_responsible" or "queue"
    users: tuple[str, ...]    # the employee, or the queue in order
    rings: int                # rings per offer before it moves on
    fallback: str             # "voicemail", "phone" or "hangup" when nobody answers
    forward_phone: str        # the on-duty mobile for the "phone" fallback
    forward_user: str         # whose mobile that is


@dataclass(frozen=True, slots=True)
class Line:
    """A rented number or a SIP connection of one portal."""

    kind: str            # "rented" or "sip"
    line_number: str     # the rented number, or the SIP connection id
    phone: str           # the number customers dial (rented number or office number)
    zone: str | None     # zone of the rented number (rating of inbound calls); None for SIP
    route: Route


@dataclass(frozen=True, slots=True)
class Portal:
    """One licence: its users, lines, settings and the voice servers it lands on."""

    portal_id: str
    index: int
    users: tuple[str, ...]
    extranet_users: tuple[str, ...]
    rented: tuple[Line, ...]
    sip: tuple[Line, ...]
    office_number: str | None   # shown instead of the rented number on outbound calls
    record: bool
    rec_format: str             # "mp3" or "wav"
    config_id: str
    voice_nodes: tuple[str, ...]
    key_save_offset_us: int     # time of day (UTC) the Controller saves the direct-access key
    loses_recordings: float = 0.0  # share of its recorded calls whose recording is never stored


@dataclass(frozen=True)
class World:
    """All portals and the cumulative weights used to pick the portal of a call."""

    portals: tuple[Portal, ...]
    cum_weights: tuple[float, ...]

    def pick(self, rng: random.Random) -> Portal:
        """A portal, with probability proportional to its size."""
        return self.portals[bisect(self.cum_weights, rng.random() * self.cum_weights[-1])]


class _Ids:
    """Global counters, so ids stay unique across portals."""

    def __init__(self) -> None:
        self.user = 0
        self.sip = 0

    def next_user(self) -> str:
        """A new user id, ``u-<n>``."""
        self.user += 1
        return f"u-{self.user}"

    def next_sip(self) -> str:
        """A new SIP connection id, ``sip-<n>``."""
        self.sip += 1
        return f"sip-{self.sip}"


def build_world(rng: random.Random, portals: int, knobs: Knobs) -> World:
    """``portals`` portals with sizes ~ 1/n, deterministic for a given ``rng`` state."""
    ids = _Ids()
    weights = [1.0 / n for n in range(1, portals + 1)]
    scale = portals / sum(weights)  # the average portal has size 1
    built = tuple(_portal(rng, ids, n, weights[n - 1] * scale, knobs) for n in range(1, portals + 1))
    return World(built, tuple(accumulate(weights)))


def _portal(rng: random.Random, ids: _Ids, n: int, size: float, knobs: Knobs) -> Portal:
    users = tuple(ids.next_user() for _ in range(max(3, round(12 * size * rng.uniform(0.6, 1.4)))))
    extranet = tuple(ids.next_user() for _ in range(max(1, len(users) // 10)))
    rented = tuple(_rented_line(rng, users) for _ in range(max(1, min(6, round(2 * size)))))
    sip = tuple(_sip_line(rng, ids, users) for _ in range(rng.choice((0, 0, 1, 1, 2))))
    return Portal(
        portal_id=f"p-{n}", index=n, users=users, extranet_users=extranet,
        rented=rented, sip=sip,
        office_number=numbers.office_number(rng) if rng.random() < 0.4 else None,
        record=rng.random() < knobs.recording,
        rec_format="mp3" if rng.random() < 0.8 else "wav",
        config_id=f"cfg-{n}-{rng.getrandbits(16):04x}",
        voice_nodes=tuple(rng.sample(VOICE_NODES, 2)),
        key_save_offset_us=rng.randrange(0, 4 * 3600) * 1_000_000,
        loses_recordings=knobs.lost_recordings,
    )


def _route(rng: random.Random, users: tuple[str, ...]) -> Route:
    roll = rng.random()
    if roll < 0.3:
        rule, members = "employee", (rng.choice(users),)
    elif roll < 0.5:
        rule, members = "crm_responsible", tuple(rng.sample(users, min(3, len(users))))
    else:
        rule, members = "queue", tuple(rng.sample(users, min(len(users), rng.randint(2, 5))))
    fallback = rng.choice(("voicemail", "voicemail", "phone", "hangup"))
    return Route(rule, members, rng.randint(2, 5), fallback,
                 numbers.mobile_number(rng), rng.choice(users))


def _rented_line(rng: random.Random, users: tuple[str, ...]) -> Line:
    zone, number = numbers.rented_number(rng)
    return Line("rented", number, number, zone, _route(rng, users))


def _sip_line(rng: random.Random, ids: _Ids, users: tuple[str, ...]) -> Line:
    return Line("sip", ids.next_sip(), numbers.office_number(rng), None, _route(rng, users))
