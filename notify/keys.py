"""Idempotency keys: stable hashes a channel can de-duplicate on.

A delivery's key is BLAKE2b-128 of (alert_id, state, channel URL): the same
alert state sent to the same channel always carries the same key, after any
restart, on any machine. A digest's key hashes its channel and its members'
keys. The first 64 bits of a key, as an integer, are what notify remembers
(:mod:`notify.ledger`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

DELIVERY_PERSON = b"callstream-dlv"


def delivery_tail(state: str, channel: str) -> bytes:
    """What follows the alert id in a delivery key's hashed bytes (a catch-up hashes one per alert)."""
    return b"\x00" + state.encode() + b"\x00" + channel.encode()


def delivery_key(alert_id: str, state: str, channel: str) -> str:
    """The idempotency key of one (alert_id, state) on one channel: 32 hex digits."""
    return hashlib.blake2b(alert_id.encode() + delivery_tail(state, channel), digest_size=16,
                           person=DELIVERY_PERSON).hexdigest()


def _set_key(person: bytes, head: str, members: Iterable[str]) -> str:
    """A hash of ``head`` and the set ``members`` (order does not matter), personalised by ``person``."""
    h = hashlib.blake2b(digest_size=16, person=person)
    h.update(head.encode())
    for key in sorted(members):
        h.update(b"\x00" + key.encode())
    return h.hexdigest()


def digest_key(channel: str, members: Iterable[str]) -> str:
    """The idempotency key of a digest: its channel and its members' keys (in any order)."""
    return _set_key(b"callstream-dig", channel, members)


def batch_key(kind: str, members: Iterable[str]) -> str:
    """The ledger key of a record that settles several deliveries without sending them."""
    return _set_key(b"callstream-bat", kind, members)


def key_int(key: str) -> int:
    """The first 64 bits of a key as an unsigned integer."""
    return int(key[:16], 16)
