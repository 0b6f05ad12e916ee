"""Run table operations in the context of one Kafka event.

Faust resolves the partition of a table key from the *current event* (a
context variable set while a stream iterates). A ``take_events`` batch mixes
events of many partitions, and the current event is then just the last one,
so reading call X from the on-disk archive under it would look in the wrong
RocksDB partition, and writing would put X into the wrong changelog
partition. We set the event explicitly around those operations instead.
(A plain function pair, not a context manager: this runs once per call per
batch on the worker's hot path.)
"""

from __future__ import annotations

import weakref
from contextvars import Token

from faust.streams import _current_event  # the context variable faust's tables read
from faust.types import EventT


def enter_event(event: EventT) -> Token:
    """Make ``event`` the current event; pass the token to :func:`leave_event`."""
    return _current_event.set(weakref.ref(event))


def leave_event(token: Token) -> None:
    """Restore the current event that was in force before :func:`enter_event`."""
    _current_event.reset(token)
