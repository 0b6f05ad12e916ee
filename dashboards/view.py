"""What one view shows: its portals, its time zone, its local today, and its filter.

Every page builds its CallFilter here, so the zone rule (portals.py) and the
user's scope mean the same on every page and in the CSV download. The scope
itself is applied again by ``Data.get`` (access.py) whatever this returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dashboards import controls
from dashboards.access import current_user
from dashboards.data import Context
from warehouse.filters import CallFilter, local_start


def chosen(value: Any) -> tuple[str, ...]:
    """The portals a picker holds (a forged value: none)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value[:controls.MAX_VALUES])
    return ()


def shown_portals(picked: Any, scope: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The portals a view shows: the picked ones the user may see, else all it may see (None: every)."""
    picked = chosen(picked)
    if scope is None:
        return picked or None
    return tuple(p for p in picked if p in scope) if picked else tuple(scope)


def zone(ctx: Context, picked: Any) -> str:
    """The time zone of a view of the ``picked`` portals, for the current user."""
    user = current_user()
    return ctx.portals.zone_of_view(shown_portals(picked, user.scope), user.tz)


def today(ctx: Context, zone_name: str) -> date:
    """Today in ``zone_name`` (the clock of the context)."""
    return ctx.now().astimezone(ZoneInfo(zone_name)).date()


def filter_of(ctx: Context, values: Mapping[str, Any]) -> CallFilter:
    """The CallFilter of control values, with days of the view's zone (FilterError if invalid)."""
    z = zone(ctx, values.get("portals"))
    return controls.call_filter(values, today(ctx, z), z)


def previous(flt: CallFilter) -> CallFilter:
    """The same number of local days just before ``flt``'s."""
    first, last = controls.first_day(flt), controls.last_day(flt)
    start = first - (last - first) - timedelta(days=1)
    return flt.replace(start=local_start(start, flt.zone), end=local_start(first, flt.zone))
