"""Malformed messages, each with the DLQ reason the contract gives it.

Each one is made from a real event of the run (so it looks like traffic) with
exactly one defect, and a fresh ``event_id`` so it can never be mistaken for a
redelivery of the real event. Kinds and their shares: not JSON (truncated or
plain text) 12 %, invalid UTF-8 6 %, not an object 8 %, bad or missing
version 10 %, unknown type 10 %, a missing envelope field 13 %, a bad envelope
field 15 %, a missing data field 10 %, a bad data field 15 %, over 1 MiB 1 %.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Callable
from itertools import accumulate
from typing import Any

import orjson

from streams.simulator.stamps import uuid4_hex

TOO_LARGE_BYTES = 1_048_576  # contract: a value over 1 MiB goes to the DLQ as too_large
MAX_PADDING = 64 * 1024
# The largest message the simulator sends (padding, the event, and record/batch framing).
LARGEST_VALUE = TOO_LARGE_BYTES + MAX_PADDING + 4096

ENVELOPE = ("type", "event_id", "call_id", "portal_id", "source", "node", "ts", "data")
BAD_ENVELOPE: dict[str, tuple[Any, ...]] = {
    "event_id": ("", "id with spaces", "e" * 65),
    "call_id": ("call/1", ""),
    "portal_id": ("p 1", 17),
    "source": ("pbx", None),
    "node": ("", "vs msk"),
    "ts": ("2026-11-25 10:15:30", "2026-11-25T13:15:30+03:00", "2026-02-30T10:00:00Z", 1764065730),
    "data": ("x", [], None),
}
REQUIRED_DATA: dict[str, tuple[str, ...]] = {
    "call.started": ("direction", "line", "from", "to"),
    "controller.replied": ("result",),
    "controller.bypassed": ("reason", "key_saved_at"),
    "call.offered": ("user_id", "attempt", "rule", "rings"),
    "call.offer_missed": ("user_id", "attempt"),
    "call.forwarded": ("to", "reason"),
    "call.answered": ("user_id",),
    "recording.stored": ("url", "bytes", "seconds", "format"),
    "call.ended": ("cause", "by"),
}
BAD_DATA: dict[str, tuple[Any, ...]] = {
    "direction": ("incoming",), "line": ("pstn",), "from": ("8 (495) 123-45-67",), "to": ("",),
    "shown_number": ("84951234567",), "extranet": ("no",), "record": (1,),
    "result": ("OK",), "config_id": ("",), "reason": ("down",), "key_saved_at": ("yesterday",),
    "user_id": ("u 1",), "attempt": (0, "1"), "rule": ("round_robin",), "rings": (-1,),
    "url": ("ftp://rec.example.net/x.mp3",), "bytes": (-1,), "seconds": ("12.5",),
    "format": ("ogg",), "cause": ("hangup",), "by": ("operator",),
}

Built = tuple[bytes, str, str]  # (value, DLQ reason, kind)


def make(rng: random.Random, template: bytes) -> Built:
    """A malformed message made from the valid event ``template``: (value, reason, kind)."""
    doc = orjson.loads(template)
    doc["event_id"] = uuid4_hex(rng)
    maker = _MAKERS[bisect(_CUM, rng.random() * _CUM[-1])]
    return maker(rng, doc)


def _truncated(rng: random.Random, doc: dict) -> Built:
    raw = orjson.dumps(doc)
    return raw[: rng.randrange(1, len(raw) - 1)], "not_json", "truncated_json"


def _plain_text(rng: random.Random, doc: dict) -> Built:
    text = f"{doc['type']};{doc['call_id']};{doc['portal_id']};{doc['ts']}"
    return text.encode(), "not_json", "plain_text"


def _invalid_utf8(rng: random.Random, doc: dict) -> Built:
    doc["node"] = "@@node@@"
    raw = orjson.dumps(doc).replace(b"@@node@@", b"vs-\xc3\x28-01")
    return raw, "not_json", "invalid_utf8"


def _not_object(rng: random.Random, doc: dict) -> Built:
    value = rng.choice(([doc], doc["type"], 42, None))
    return orjson.dumps(value), "not_object", "not_object"


def _bad_version(rng: random.Random, doc: dict) -> Built:
    if rng.random() < 0.2:
        del doc["v"]
        return orjson.dumps(doc), "missing_field:v", "missing_version"
    doc["v"] = rng.choice((2, 0, "1", 1.0))
    return orjson.dumps(doc), "bad_version", "bad_version"


def _unknown_type(rng: random.Random, doc: dict) -> Built:
    doc["type"] = rng.choice(("call.transferred", "call.held", "Call.Started", ""))
    return orjson.dumps(doc), "unknown_type", "unknown_type"


def _missing_envelope(rng: random.Random, doc: dict) -> Built:
    name = rng.choice(ENVELOPE)
    del doc[name]
    return orjson.dumps(doc), f"missing_field:{name}", "missing_envelope_field"


def _bad_envelope(rng: random.Random, doc: dict) -> Built:
    name = rng.choice(tuple(BAD_ENVELOPE))
    bad = rng.choice(BAD_ENVELOPE[name])
    if name == "source" and bad is None:
        bad = "controller" if doc["source"] == "voice" else "voice"  # the other side's name
    doc[name] = bad
    return orjson.dumps(doc), f"bad_field:{name}", "bad_envelope_field"


def _missing_data(rng: random.Random, doc: dict) -> Built:
    required = REQUIRED_DATA.get(doc["type"])
    if not required:
        return _missing_envelope(rng, doc)
    name = rng.choice(required)
    del doc["data"][name]
    return orjson.dumps(doc), f"missing_field:{name}", "missing_data_field"


def _bad_data(rng: random.Random, doc: dict) -> Built:
    names = [n for n in doc["data"] if n in BAD_DATA]
    if not names:
        return _bad_envelope(rng, doc)
    name = rng.choice(names)
    doc["data"][name] = rng.choice(BAD_DATA[name])
    return orjson.dumps(doc), f"bad_field:{name}", "bad_data_field"


def _too_large(rng: random.Random, doc: dict) -> Built:
    # A valid event padded past the limit: only its size is wrong.
    doc["padding"] = "x" * (TOO_LARGE_BYTES + rng.randrange(1, MAX_PADDING))
    return orjson.dumps(doc), "too_large", "too_large"


_TABLE: tuple[tuple[float, Callable[[random.Random, dict], Built]], ...] = (
    (0.08, _truncated), (0.04, _plain_text), (0.06, _invalid_utf8), (0.08, _not_object),
    (0.10, _bad_version), (0.10, _unknown_type), (0.13, _missing_envelope),
    (0.15, _bad_envelope), (0.10, _missing_data), (0.15, _bad_data), (0.01, _too_large),
)
_CUM = list(accumulate(w for w, _ in _TABLE))
_MAKERS = [m for _, m in _TABLE]
