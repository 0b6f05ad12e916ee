"""Realistic E.164 numbers: destinations by zone, callers, rented and office numbers.

Each plan is ``(prefix, digits)``: ``prefix`` is the country code plus the
area or mobile code, ``digits`` the count of subscriber digits that follow, so
every number has the length its numbering plan gives it (Russia and
Kazakhstan share +7: Kazakhstan is +7 6xx / 7xx).
"""

from __future__ import annotations

import random
from bisect import bisect
from itertools import accumulate

Plan = tuple[str, int]

MOSCOW: tuple[Plan, ...] = (("+7495", 7), ("+7499", 7))
ST_PETERSBURG: tuple[Plan, ...] = (("+7812", 7),)
RU_MOBILE: tuple[Plan, ...] = tuple((f"+79{code}", 7) for code in ("03", "05", "09", "15", "16", "17",
                                                                  "21", "26", "52", "77", "85", "99"))
RU_REGIONS: tuple[Plan, ...] = (("+7343", 7), ("+7383", 7), ("+7861", 7), ("+7846", 7),
                                ("+7863", 7), ("+7843", 7))
KAZAKHSTAN: tuple[Plan, ...] = (("+7701", 7), ("+7705", 7), ("+7707", 7), ("+7747", 7),
                                ("+7777", 7), ("+7727", 7), ("+7717", 7))
CIS: tuple[Plan, ...] = KAZAKHSTAN + (
    ("+37517", 7), ("+37529", 7), ("+37533", 7), ("+37544", 7),      # Belarus
    ("+38044", 7), ("+38050", 7), ("+38067", 7), ("+38093", 7),      # Ukraine
    ("+99871", 7), ("+99890", 7), ("+99893", 7), ("+99897", 7),      # Uzbekistan
    ("+37410", 6), ("+37477", 6), ("+37491", 6),                     # Armenia
    ("+996312", 6), ("+996555", 6), ("+996700", 6),                  # Kyrgyzstan
    ("+99412", 7), ("+99450", 7), ("+99455", 7),                     # Azerbaijan
    ("+37322", 6), ("+37369", 6),                                    # Moldova
    ("+99237", 7), ("+99293", 7),                                    # Tajikistan
)
EUROPE: tuple[Plan, ...] = (
    ("+4930", 8), ("+4989", 8), ("+49151", 8), ("+49170", 8), ("+49176", 8),  # Germany
    ("+4420", 8), ("+447", 9),                                                # United Kingdom
    ("+331", 8), ("+336", 8), ("+337", 8),                                    # France
    ("+3906", 8), ("+393", 9),                                                # Italy
    ("+3491", 7), ("+346", 8),                                                # Spain
    ("+4822", 7), ("+485", 8),                                                # Poland
    ("+3120", 7), ("+316", 8),                                                # Netherlands
    ("+3589", 7), ("+35840", 7),                                              # Finland
    ("+37167", 6), ("+3712", 7),                                              # Latvia
    ("+3705", 7), ("+3706", 7),                                               # Lithuania
    ("+3726", 6), ("+3725", 7),                                               # Estonia
    ("+4202", 8), ("+4206", 8),                                               # Czech Republic
)
USA_AREAS = ("212", "202", "213", "305", "312", "415", "512", "617", "646", "718")

# Outbound destinations: (zone, weight, plans); "usa" is generated separately.
_DESTINATIONS: tuple[tuple[str, float, tuple[Plan, ...]], ...] = (
    ("russia", 0.25, MOSCOW),
    ("russia", 0.10, ST_PETERSBURG),
    ("russia", 0.30, RU_MOBILE),
    ("russia", 0.10, RU_REGIONS),
    ("cis", 0.12, CIS),
    ("europe", 0.08, EUROPE),
    ("usa", 0.05, ()),
)
_DEST_CUM = list(accumulate(w for _, w, _ in _DESTINATIONS))
# Inbound callers: mostly Russian mobiles and landlines, some CIS.
_CALLER_PLANS: tuple[Plan, ...] = RU_MOBILE * 4 + MOSCOW * 3 + ST_PETERSBURG + RU_REGIONS + KAZAKHSTAN


def from_plan(rng: random.Random, plan: Plan) -> str:
    """One number of ``plan``: its prefix and random subscriber digits."""
    prefix, digits = plan
    return f"{prefix}{rng.randrange(10 ** digits):0{digits}d}"


def usa_number(rng: random.Random) -> str:
    """A NANP number: +1, an area code, an exchange 200-999 (never N11), 4 digits."""
    exchange = rng.randrange(200, 1000)
    if exchange % 100 == 11:
        exchange += 1
    return f"+1{rng.choice(USA_AREAS)}{exchange}{rng.randrange(10_000):04d}"


def destination(rng: random.Random) -> tuple[str, str]:
    """(zone, E.164 number) of an outbound call: Russia, CIS, Europe or the USA."""
    zone, _, plans = _DESTINATIONS[bisect(_DEST_CUM, rng.random() * _DEST_CUM[-1])]
    if zone == "usa":
        return zone, usa_number(rng)
    return zone, from_plan(rng, rng.choice(plans))


def caller(rng: random.Random) -> str:
    """The number of an external caller on an inbound call."""
    return from_plan(rng, rng.choice(_CALLER_PLANS))


def rented_number(rng: random.Random) -> tuple[str, str]:
    """(zone, number) of a number a portal rents: mostly Moscow/St Petersburg, some abroad."""
    roll = rng.random()
    if roll < 0.55:
        return "russia", from_plan(rng, rng.choice(MOSCOW))
    if roll < 0.70:
        return "russia", from_plan(rng, ST_PETERSBURG[0])
    if roll < 0.80:
        return "russia", from_plan(rng, ("+7800", 7))
    if roll < 0.90:
        return "russia", from_plan(rng, rng.choice(RU_REGIONS))
    if roll < 0.96:
        return "cis", from_plan(rng, rng.choice(KAZAKHSTAN))
    if roll < 0.98:
        return "europe", from_plan(rng, rng.choice((("+4930", 8), ("+4420", 8))))
    return "usa", usa_number(rng)


def office_number(rng: random.Random) -> str:
    """A company's existing landline (shown instead of a rented number, or a SIP line)."""
    return from_plan(rng, rng.choice(MOSCOW + ST_PETERSBURG + RU_REGIONS))


def mobile_number(rng: random.Random) -> str:
    """A Russian mobile (an employee's phone that calls are forwarded to)."""
    return from_plan(rng, rng.choice(RU_MOBILE))
