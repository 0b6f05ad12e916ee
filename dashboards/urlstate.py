"""Filters in the address: every view can be bookmarked and shared, and a click on a chart
opens the call table filtered to what was clicked.

``?period=7d&portals=p1&portals=p2`` on the analytics pages; the call table
takes every filter of ``controls.call_filter`` (``start``, ``end``, ``lines``,
``statuses``, ``regions``, ``causes``, ...). What the address holds is only a
starting value of the controls: it is checked like any control value, and the
user's portals are enforced by the query layer whatever it says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from dashboards import controls

LISTS = tuple(controls.LIST_FIELDS)
SCALARS = ("period", "start", "end", "recording", "number", *controls.BOUND_FIELDS)
MAX_SEARCH = 8192


def query_values(search: Any) -> dict[str, Any]:
    """Control values from an address's query string (unknown keys and oversized input ignored)."""
    if not isinstance(search, str) or not search or len(search) > MAX_SEARCH:
        return {}
    parsed = parse_qs(search.lstrip("?"), max_num_fields=controls.MAX_VALUES)
    values: dict[str, Any] = {}
    for key, items in parsed.items():
        if key in LISTS:
            values[key] = [v for v in items if v][:controls.MAX_VALUES]
        elif key in SCALARS and items:
            values[key] = items[-1]
    return values


def search_of(values: Mapping[str, Any]) -> str:
    """The query string (``?...``, or "" when nothing is set) of control values."""
    clean = {k: v for k, v in controls.clean_values(values).items() if k in LISTS or k in SCALARS}
    if clean.get("period") == controls.DEFAULT_PERIOD:
        clean.pop("period")
    return "?" + urlencode(clean, doseq=True) if clean else ""


def drill(point: Any, base: Mapping[str, Any]) -> str | None:
    """``/calls?...`` for a clicked chart point whose ``customdata`` holds the filter of what it
    stands for (JSON text), over the page's own period and portals; None when it holds none."""
    points = point.get("points") if isinstance(point, dict) else None
    if not isinstance(points, list) or not points or not isinstance(points[0], dict):
        return None
    data = points[0].get("customdata")
    if isinstance(data, list) and data:
        data = data[-1]
    if not isinstance(data, str) or len(data) > 2000:
        return None
    try:
        extra = json.loads(data)
    except ValueError:
        return None
    if not isinstance(extra, dict):
        return None
    if isinstance(extra.get("call"), str) and 0 < len(extra["call"]) <= 256:
        return "/calls/" + quote(extra["call"], safe="")
    values = {k: v for k, v in base.items() if k in ("period", "portals")}
    values.update({k: v for k, v in extra.items() if k in LISTS or k in SCALARS})
    if "start" in values:
        values.pop("period", None)
    return "/calls" + search_of(values)
