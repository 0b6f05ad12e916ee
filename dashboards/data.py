"""The dashboard's one door to the warehouse: a shared Reader and a small result cache.

Every callback asks :meth:`Data.get` for a named query of ``warehouse.queries``
(or ``warehouse.dashboard_queries``) with its arguments. Results are cached per
published manifest (``seq``): while the sink publishes nothing new, a live
refresh or a second viewer costs a dictionary lookup; the first publish after
it invalidates everything at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common.config import Settings
from dashboards.access import current_user, scoped_call
from warehouse.reader import Reader


class SteadyReader(Reader):
    """A warehouse Reader that looks for a newer manifest at most every ``min_interval_s``.

    The sink may publish every half second; a page render runs a dozen queries, and
    each move to a newer manifest re-binds the views and empties the cache. Moving at
    most once a second keeps one render on one snapshot, lets its callbacks share
    results, and costs at most that second of freshness, which the badge (computed
    from the manifest in use) reports honestly.
    """

    def __init__(self, root: Any, *, min_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, **options: Any) -> None:
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._checked = float("-inf")
        super().__init__(root, **options)

    def refresh(self) -> bool:
        """Re-point the views to a newer manifest, if one was published and the interval has passed."""
        now = self._clock()
        if now - self._checked < self.min_interval_s:
            return False
        self._checked = now
        return super().refresh()


class Data:
    """Cached, thread-safe access to the warehouse queries for every callback of one app."""

    def __init__(self, reader: Reader, *, size: int = 512) -> None:
        self.reader = reader
        self._size = size
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._lasting: dict[tuple, tuple[float, Any]] = {}

    def seq(self) -> int | None:
        """The sequence number of the newest published manifest (None: nothing yet)."""
        self.reader.refresh()
        manifest = self.reader.manifest
        return None if manifest is None else manifest.seq

    def get(self, query: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``query(reader, *args, **kwargs)``, from the cache when the data has not changed since.

        Arguments must be hashable (filters are frozen dataclasses of tuples). Callers must not
        mutate a returned frame. The query runs in the current user's scope (access.py): only
        the portals the account may see, whatever the arguments say.
        """
        args, kwargs = scoped_call(query, args, kwargs, current_user().scope)
        # The reader's generation changes when it leaves out a file found damaged mid-manifest.
        key = (self.seq(), self.reader.generation, query.__module__, query.__qualname__, args,
               tuple(sorted(kwargs.items())))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.hits += 1
                return self._cache[key]
        value = query(self.reader, *args, **kwargs)
        with self._lock:
            self.misses += 1
            self._cache[key] = value
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return value


    def lasting(self, query: Callable[..., Any], *args: Any, ttl_s: float = 30.0, **kwargs: Any) -> Any:
        """Like :meth:`get`, but kept ``ttl_s`` seconds whatever is published meanwhile.

        Only for lists that change slowly and show no figures (the portals of a picker):
        they then cost nothing on each page load of a live pipeline. Scoped like :meth:`get`.
        """
        args, kwargs = scoped_call(query, args, kwargs, current_user().scope)
        key = (query.__module__, query.__qualname__, args, tuple(sorted(kwargs.items())))
        now = time.monotonic()
        with self._lock:
            found = self._lasting.get(key)
        if found is not None and now - found[0] < ttl_s:
            return found[1]
        value = query(self.reader, *args, **kwargs)
        with self._lock:
            self._lasting[key] = (now, value)
        return value


def utc_now() -> datetime:
    """The wall clock, UTC (injected into pages so tests can fix it)."""
    return datetime.now(UTC)


@dataclass
class Context:
    """What every page needs: settings, the data door, a clock, the portals file and the accounts."""

    settings: Settings
    data: Data
    now: Callable[[], datetime] = field(default=utc_now)
    portals: Any = None  # dashboards.portals.Portals (made from the settings when not given)
    accounts: Any = None  # dashboards.accounts.Store (made from the settings when not given)

    def __post_init__(self) -> None:
        from dashboards.accounts import Store
        from dashboards.portals import Portals

        if self.portals is None:
            self.portals = Portals(self.settings)
        if self.accounts is None:
            self.accounts = Store(self.settings.accounts_path)

    @property
    def stale_after_s(self) -> float:
        """Freshness badge turns to STALE past this age of the last publish."""
        return max(30.0, 6 * self.settings.refresh_s)
