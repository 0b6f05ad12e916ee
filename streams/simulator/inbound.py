"""Routing of an inbound call: employee, CRM-responsible manager or queue, then the fallback.

Each offer rings an employee for the route's number of rings (5 s each);
an employee answers 55 % of offers, declines 3 %, and otherwise lets it ring
out (``call.offer_missed``), and the next employee gets the next attempt.
A crm_responsible route offers the call to the manager responsible for the
caller in the CRM, then to the route's queue. A queue may be tried twice.
When nobody answers, the route's fallback forwards the call to voicemail or
to the on-duty mobile (``no_answer``) or hangs up. The caller hangs up after
their patience (8 s plus an exponential with a 45 s mean) runs out. A few
calls are forwarded at once by a rule (after hours); an employee already on
the phone makes a call to them ``busy`` (forwarded with reason ``busy``
unless the fallback is to hang up).
"""

from __future__ import annotations

import random

from streams.simulator import call as o
from streams.simulator.call import Call
from streams.simulator.model import RING_US, Line, Route
from streams.simulator.stamps import ms_us
from streams.simulator.talk import converse

VOICEMAIL = "voicemail"


def route_inbound(rng: random.Random, call: Call, line: Line, t_us: int) -> None:
    """Play the inbound call from ``t_us`` (the Controller has let it through) to its end."""
    route = line.route
    if rng.random() < 0.005:
        call.end(t_us + ms_us(rng.uniform(0.2, 2.0)), o.FAILED)
        return
    if rng.random() < 0.03:
        _forward(rng, call, route, t_us + ms_us(rng.uniform(0.1, 0.5)), "rule")
        return
    patience_us = t_us + ms_us(8.0 + rng.expovariate(1 / 45.0))
    for user, rule in _offers(rng, call, route):
        if t_us >= patience_us:
            call.end(patience_us, o.CALLER_GAVE_UP)
            return
        t_us = _offer(rng, call, route, user, rule, t_us, patience_us)
        if t_us is None:
            return
    if route.fallback == "hangup":
        call.end(t_us, o.NO_ANSWER)
    else:
        _forward(rng, call, route, t_us, "no_answer")


def _offers(rng: random.Random, call: Call, route: Route) -> list[tuple[str, str]]:
    if route.rule == "employee":
        return [(route.users[0], "employee")]
    if route.rule == "crm_responsible":
        manager = rng.choice(call.portal.users)
        return [(manager, "crm_responsible")] + [(u, "queue") for u in route.users if u != manager]
    rounds = 2 if rng.random() < 0.3 else 1
    return [(u, "queue") for u in route.users] * rounds


def _offer(rng: random.Random, call: Call, route: Route, user: str, rule: str,
           t_us: int, patience_us: int) -> int | None:
    """Offer the call to ``user``; return when the next offer may start, or None if it ended."""
    attempt = call.offer(t_us, user, rule, route.rings)
    window_s = route.rings * RING_US / 1e6
    roll = rng.random()
    if roll < 0.05 and rule == "employee":
        if route.fallback == "hangup":
            call.end(t_us + ms_us(rng.uniform(0.3, 1.0)), o.BUSY)
        else:
            _forward(rng, call, route, t_us + ms_us(rng.uniform(0.3, 1.0)), "busy")
        return None
    if roll < 0.08:
        call.end(t_us + ms_us(rng.uniform(1.0, min(10.0, window_s))), o.REJECTED)
        return None
    if roll < 0.63:
        answer_us = t_us + ms_us(rng.uniform(1.0, window_s))
        if answer_us > patience_us:
            call.end(patience_us, o.CALLER_GAVE_UP)
        else:
            converse(rng, call, answer_us, user)
        return None
    missed_us = t_us + route.rings * RING_US
    if missed_us > patience_us:
        call.end(patience_us, o.CALLER_GAVE_UP)
        return None
    call.voice("call.offer_missed", missed_us, {"user_id": user, "attempt": attempt})
    return missed_us + ms_us(rng.uniform(0.2, 0.8))


def _forward(rng: random.Random, call: Call, route: Route, t_us: int, reason: str) -> None:
    """Forward to voicemail or the on-duty mobile; play what happens there."""
    to_phone = route.fallback == "phone" or (route.fallback == "hangup" and reason == "rule")
    call.forward(t_us, route.forward_phone if to_phone else VOICEMAIL, reason)
    if not to_phone:
        # The caller leaves a message (or not) and hangs up: nobody answered.
        call.end(t_us + ms_us(rng.uniform(3.0, 60.0)), o.CALLER_GAVE_UP)
    elif rng.random() < 0.5:
        converse(rng, call, t_us + ms_us(rng.uniform(3.0, 20.0)), route.forward_user)
    else:
        call.end(t_us + ms_us(rng.uniform(20.0, 40.0)), o.NO_ANSWER)
