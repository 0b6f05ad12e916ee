"""One function per kind of call: who calls whom on which line, and how it goes.

The mix (share of calls): inbound on a rented number 33 %, inbound over SIP
14 %, outbound from a rented number 20 %, outbound through the operator 13 %,
outbound over SIP 8 %, internal 12 % (portals without a SIP connection place
their SIP share on rented numbers). Every non-internal call asks the
Controller first; internal calls never do and are never recorded.
"""

from __future__ import annotations

import random
from bisect import bisect
from itertools import accumulate

from streams.simulator import call as o
from streams.simulator import numbers
from streams.simulator.call import Call
from streams.simulator.controller import ControllerLife
from streams.simulator.inbound import route_inbound
from streams.simulator.knobs import Knobs
from streams.simulator.model import CONTROLLER_NODES, CONTROLLER_SKEW_US, Portal, World
from streams.simulator.stamps import format_ts, ms_us
from streams.simulator.talk import ring_out

KINDS = ("inbound_rented", "inbound_sip", "outbound_rented", "outbound_operator",
         "outbound_sip", "internal")
_KIND_CUM = list(accumulate((0.33, 0.14, 0.20, 0.13, 0.08, 0.12)))


class Context:
    """What every scenario needs: the random stream, the world, the Controllers."""

    def __init__(self, rng: random.Random, world: World, knobs: Knobs, start_us: int) -> None:
        self.rng = rng
        self.world = world
        self.knobs = knobs
        self.controllers = [ControllerLife(rng, knobs, p.config_id, p.key_save_offset_us, start_us)
                            for p in world.portals]
        self.seq = 0


def play(ctx: Context, t0_us: int) -> Call:
    """Play one call starting at ``t0_us`` on a portal picked by size; return it ended."""
    rng = ctx.rng
    portal = ctx.world.pick(rng)
    ctx.seq += 1
    call = Call(f"{rng.getrandbits(64):016x}-{ctx.seq:x}", portal, rng.choice(portal.voice_nodes), t0_us)
    kind = KINDS[bisect(_KIND_CUM, rng.random() * _KIND_CUM[-1])]
    if not portal.sip and kind.endswith("_sip"):
        kind = kind.replace("_sip", "_rented")
    _PLAYERS[kind](ctx, portal, call)
    return call


def inbound_rented(ctx: Context, portal: Portal, call: Call) -> None:
    """A customer dials one of the portal's rented numbers."""
    line = ctx.rng.choice(portal.rented)
    call.start("inbound", "rented", numbers.caller(ctx.rng), line.phone, line.line_number,
               None, None, False, portal.record, line.zone)
    t = ask_controller(ctx, call, call.started_us)
    if t is not None:
        route_inbound(ctx.rng, call, line, t)


def inbound_sip(ctx: Context, portal: Portal, call: Call) -> None:
    """A customer dials the company's office number, connected through the SIP connector."""
    line = ctx.rng.choice(portal.sip)
    call.start("inbound", "sip", numbers.caller(ctx.rng), line.phone, line.line_number,
               None, None, False, portal.record, None)
    t = ask_controller(ctx, call, call.started_us)
    if t is not None:
        route_inbound(ctx.rng, call, line, t)


def outbound_rented(ctx: Context, portal: Portal, call: Call) -> None:
    """An employee calls out from a rented number, possibly shown as the office number."""
    line = ctx.rng.choice(portal.rented)
    shown = portal.office_number or line.phone
    _outbound(ctx, portal, call, "rented", line.phone, line.line_number, shown)


def outbound_operator(ctx: Context, portal: Portal, call: Call) -> None:
    """An employee calls out through the operator, without a rented number."""
    _outbound(ctx, portal, call, "operator", None, None, portal.office_number)


def outbound_sip(ctx: Context, portal: Portal, call: Call) -> None:
    """An employee calls out through the office PBX."""
    line = ctx.rng.choice(portal.sip)
    _outbound(ctx, portal, call, "sip", line.phone, line.line_number, line.phone)


def internal(ctx: Context, portal: Portal, call: Call) -> None:
    """One portal user calls another (extranet users may): free, never recorded."""
    rng = ctx.rng
    extranet = rng.random() < 0.05
    caller = rng.choice(portal.extranet_users if extranet else portal.users)
    callee = rng.choice(portal.users)
    while callee == caller:
        callee = rng.choice(portal.users)
    call.start("internal", "internal", f"user:{caller}", f"user:{callee}", None, None, caller,
               extranet, False, None)
    # "who is on the call" for an internal call: the user who picked up.
    ring_out(rng, call, call.started_us + ms_us(rng.uniform(0.1, 0.6)), callee)


def _outbound(ctx: Context, portal: Portal, call: Call, line: str, from_phone: str | None,
              line_number: str | None, shown: str | None) -> None:
    rng = ctx.rng
    extranet = rng.random() < ctx.knobs.extranet
    user = rng.choice(portal.extranet_users if extranet else portal.users)
    zone, to = numbers.destination(rng)
    call.start("outbound", line, from_phone or f"user:{user}", to, line_number, shown, user,
               extranet, portal.record, zone)
    t = ask_controller(ctx, call, call.started_us)
    if t is None:
        return
    if extranet:
        # Extranet users may not call through the portal's paid lines.
        call.end(t + ms_us(rng.uniform(0.1, 0.4)), o.FORBIDDEN)
        return
    ring_out(rng, call, t, user)


def ask_controller(ctx: Context, call: Call, t_us: int) -> int | None:
    """Ask the Controller; return when the call may go on, or None if it was refused and ended."""
    rng = ctx.rng
    t_req = t_us + ms_us(rng.uniform(0.005, 0.05))
    call.voice("controller.requested", t_req, {})
    verdict = ctx.controllers[call.portal.index - 1].verdict(t_us)
    if verdict.outcome == "bypassed":
        wait = {"timeout": 3.0 + rng.uniform(0, 0.2), "unreachable": rng.uniform(0.03, 0.2),
                "error": rng.uniform(0.1, 0.8)}[verdict.reason]
        t_bypass = t_req + ms_us(wait)
        call.bypass(t_bypass, verdict.reason, verdict.key_saved_at_us, format_ts(verdict.key_saved_at_us))
        return t_bypass + ms_us(rng.uniform(0.01, 0.05))
    node = rng.choice(CONTROLLER_NODES)
    t_reply = t_req + ms_us(rng.uniform(0.02, 0.25))
    call.replied(t_reply + CONTROLLER_SKEW_US[node], node, verdict.outcome, verdict.config_id)
    if verdict.outcome == "ok":
        return t_reply + ms_us(rng.uniform(0.01, 0.05))
    refused = o.LICENSE_ERROR if verdict.outcome == "license_error" else o.CONFIG_NOT_FOUND
    call.end(t_reply + ms_us(rng.uniform(0.05, 0.3)), refused)
    return None


_PLAYERS = {
    "inbound_rented": inbound_rented,
    "inbound_sip": inbound_sip,
    "outbound_rented": outbound_rented,
    "outbound_operator": outbound_operator,
    "outbound_sip": outbound_sip,
    "internal": internal,
}
