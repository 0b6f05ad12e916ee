"""The rules file (``CALLSTREAM_NOTIFY_RULES``, TOML): an ordered list of routes.

Each ``[[route]]`` matches alert ``types``, ``portal_id``s (``portals``) and
``states`` (``"*"`` matches all; each defaults to ``["*"]``) and names its
``channels`` (Apprise URLs). ``group_s`` = 0 sends one message per alert,
otherwise one digest per route, portal and window of that many seconds;
``min_hits`` alerts of a portal within ``window_s`` seconds must match before
any is delivered. The first matching route wins unless it says
``continue = true``. A broken file is one line naming the file, the line and
the problem (:class:`RulesError`). ``notify/rules.example.toml`` documents it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notify.alerts import STATES, Alert

KEYS = {"name", "types", "portals", "states", "channels", "group_s", "min_hits", "window_s", "continue"}
MAX_ROUTES = 1000
MAX_CHANNELS = 50
MAX_GROUP_S = 7 * 86400


class RulesError(ValueError):
    """The rules file cannot be used; the message is one line naming the file and line."""


@dataclass(frozen=True)
class Route:
    """One route of the rules file."""

    index: int  # 1-based position in the file
    name: str
    types: frozenset[str]  # empty: every type
    portals: frozenset[str]  # empty: every portal
    states: frozenset[str]
    channels: tuple[str, ...]
    group_s: int = 0
    min_hits: int = 1
    window_s: int = 300
    cont: bool = False

    def matches(self, alert: Alert) -> bool:
        """True when the alert's type, portal and state are all among the route's."""
        return ((not self.types or alert.type in self.types)
                and (not self.portals or alert.portal_id in self.portals)
                and alert.state in self.states)


@dataclass(frozen=True)
class Rules:
    """The routes in file order."""

    routes: tuple[Route, ...] = ()
    source: str = "(no rules file)"

    def routes_for(self, alert: Alert) -> list[Route]:
        """The routes an alert takes: the first match, and the next ones while a match says continue."""
        taken = []
        for route in self.routes:
            if route.matches(alert):
                taken.append(route)
                if not route.cont:
                    break
        return taken

    @property
    def channels(self) -> list[str]:
        """Every distinct channel, in file order."""
        return list(dict.fromkeys(ch for route in self.routes for ch in route.channels))

    @property
    def longest_window_s(self) -> int:
        """The longest min-hits window or grouping window (how far back a restart re-reads)."""
        return max([0] + [max(r.group_s, r.window_s if r.min_hits > 1 else 0) for r in self.routes])


def load_rules(path: str | Path | None, check_channel: Callable[[str], str | None] | None = None) -> Rules:
    """The rules of the file at ``path`` (no file: no routes); RulesError when broken.

    ``check_channel(url)`` returns why a channel URL is unusable, or None.
    """
    if path is None:
        return Rules()
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RulesError(f"{name}: cannot read the rules file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise RulesError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{name}:{_toml_line(exc, text)}: not valid TOML: {_toml_reason(exc)}") from None
    return parse_rules(data, text, name, check_channel)


def parse_rules(data: dict[str, Any], text: str, name: str,
                check_channel: Callable[[str], str | None] | None = None) -> Rules:
    """Rules from parsed TOML; ``text`` is the file's text, for line numbers in errors."""
    unknown = sorted(set(data) - {"route"})
    if unknown:
        raise RulesError(f"{name}:{_line_of(text, unknown[0])}: unknown table or key {unknown[0]!r} "
                         "(the file holds [[route]] tables)")
    routes = data.get("route", [])
    if not isinstance(routes, list) or not all(isinstance(r, dict) for r in routes):
        raise RulesError(f"{name}:{_line_of(text, 'route')}: 'route' must be an array of tables ([[route]])")
    if len(routes) > MAX_ROUTES:
        raise RulesError(f"{name}: more than {MAX_ROUTES} routes")
    headers = _route_lines(text)
    parsed = []
    for index, table in enumerate(routes, start=1):
        start = headers[index - 1] if index - 1 < len(headers) else 1
        parsed.append(_route(table, index, lambda key, s=start: _line_of(text, key, s),
                             f"{name}:{{line}}: route {index}", check_channel))
    return Rules(tuple(parsed), name)


def _route(table: dict[str, Any], index: int, line: Callable[[str], int], where: str,
           check_channel: Callable[[str], str | None] | None) -> Route:
    def fail(key: str, problem: str) -> RulesError:
        return RulesError(where.format(line=line(key)) + f": {problem}")

    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    types = _names(table, "types", fail, re.compile(r"[a-z][a-z0-9_]{0,63}"))
    portals = _names(table, "portals", fail, re.compile(r"[A-Za-z0-9._:-]{1,64}"))
    states = _names(table, "states", fail, None) or frozenset(STATES)
    bad = sorted(states - set(STATES))
    if bad:
        raise fail("states", f"unknown state {bad[0]!r} (open, resolved, retracted)")
    channels = table.get("channels")
    if (not isinstance(channels, list) or not channels or len(channels) > MAX_CHANNELS
            or not all(isinstance(c, str) and 0 < len(c) <= 2048 for c in channels)):
        raise fail("channels", f"channels must be a list of 1-{MAX_CHANNELS} channel URLs")
    for number, url in enumerate(channels, start=1):
        problem = check_channel(url) if check_channel else None
        if problem:
            raise fail("channels", f"channel {number}: {problem}")
    name = table.get("name", f"route {index}")
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        raise fail("name", "name must be a text of 1-100 characters")
    group_s = _int(table, "group_s", 0, 0, MAX_GROUP_S, fail)
    min_hits = _int(table, "min_hits", 1, 1, 100_000, fail)
    window_s = _int(table, "window_s", 300, 1, MAX_GROUP_S, fail)
    cont = table.get("continue", False)
    if not isinstance(cont, bool):
        raise fail("continue", "continue must be true or false")
    return Route(index, name, types, portals, frozenset(states), tuple(dict.fromkeys(channels)),
                 group_s, min_hits, window_s, cont)


def _names(table: dict[str, Any], key: str, fail, pattern: re.Pattern | None) -> frozenset[str]:
    """A list of names; ``"*"`` (or the key left out) matches everything: the empty set."""
    values = table.get(key, ["*"])
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise fail(key, f"{key} must be a non-empty list of texts (\"*\" for all)")
    if "*" in values:
        return frozenset()
    for value in values:
        if pattern is not None and not pattern.fullmatch(value):
            raise fail(key, f"{key}: {value[:80]!r} is not a valid name")
    return frozenset(values)


def _int(table: dict[str, Any], key: str, default: int, low: int, high: int, fail) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise fail(key, f"{key} must be a whole number from {low} to {high}")
    return value


def _route_lines(text: str) -> list[int]:
    """1-based line numbers of the ``[[route]]`` headers."""
    return [n for n, line in enumerate(text.splitlines(), start=1)
            if re.match(r"\s*\[\[\s*route\s*\]\]", line)]


def _line_of(text: str, key: str, start: int = 1) -> int:
    """The line where ``key`` is set at or after line ``start`` (else ``start``)."""
    pattern = re.compile(rf"\s*(?:\[+\s*)?[\"']?{re.escape(key)}[\"']?\s*(?:=|\])")
    for n, line in enumerate(text.splitlines()[start - 1:], start=start):
        if pattern.match(line):
            return n
    return start


def _toml_line(exc: tomllib.TOMLDecodeError, text: str) -> int:
    found = re.search(r"at line (\d+)", str(exc))
    if found:
        return int(found.group(1))
    return max(1, len(text.rstrip("\n").splitlines())) if "end of document" in str(exc) else 1


def _toml_reason(exc: tomllib.TOMLDecodeError) -> str:
    return re.sub(r"\s*\(at (?:line \d+, column \d+|end of document)\)", "", str(exc)) or "syntax error"


def every_channel(rules: Rules) -> Iterable[str]:
    """Every distinct channel URL of the rules."""
    return rules.channels
