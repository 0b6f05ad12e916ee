"""Run table operations in the context of one Kafka event.

Faust resolves the partition of a table key from the *current event* (a
context variable set while a stream iterates). A ``take_events`` batch mixes
events of many partitions, and the current event is then just the last one,
so writing call X's state under it would put X into the wrong changelog
partition and read the wrong RocksDB partition. We set the event explicitly
around every table operation instead.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Iterator

from faust.streams import _current_event  # the context variable faust's tables read
from faust.types import EventT


@contextmanager
def event_context(event: EventT) -> Iterator[None]:
    """Make ``event`` the current event for the table operations inside the block."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
