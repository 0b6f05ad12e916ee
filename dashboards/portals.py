"""The portals file (``CALLSTREAM_PORTALS``): each portal's name, time zone, currency and quota.

A JSON object, portal id -> settings, every key optional::

    {"p-00": {"name": "Romashka LLC", "tz": "Europe/Moscow", "currency": "RUB",
              "recording_quota_bytes": 53687091200},
     "*":    {"tz": "Europe/Moscow"}}

``"*"`` holds the defaults of portals the file does not list; without it they
are named by their id, counted in ``CALLSTREAM_DASH_TZ`` days, and share the
quota ``CALLSTREAM_RECORDING_QUOTA_BYTES``. The file is read again when it
changes; a broken one is a one-line ConfigError at start-up, and a change that
breaks it later keeps the last good version (and says so in the log).

Which zone a view uses: the portal's when the view shows one portal (chosen,
or the only one the user may see), else the user's own (account setting),
else ``CALLSTREAM_DASH_TZ``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import ConfigError, Settings
from warehouse.filters import zone_literal

log = logging.getLogger(__name__)
_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_FILE = 4 * 1024 * 1024


@dataclass(frozen=True)
class Portal:
    """What the dashboard knows of one portal besides its calls."""

    id: str
    name: str
    tz: str
    currency: str | None
    quota_bytes: int


def _entry(pid: str, raw: Any, base: Portal) -> Portal:
    """One portal's settings over ``base`` (the defaults); ValueError naming what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError(f"{pid}: expected an object")
    unknown = set(raw) - {"name", "tz", "currency", "recording_quota_bytes"}
    if unknown:
        raise ValueError(f"{pid}: unknown keys {sorted(unknown)}")
    name = raw.get("name", base.name if pid == "*" else pid)
    tz = raw.get("tz", base.tz)
    currency = raw.get("currency", base.currency)
    quota = raw.get("recording_quota_bytes", base.quota_bytes)
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise ValueError(f"{pid}: name must be 1-200 characters")
    try:
        zone_literal(tz)
    except ValueError as exc:
        raise ValueError(f"{pid}: tz: {exc}") from None
    if currency is not None and not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
        raise ValueError(f"{pid}: currency must be an ISO 4217 code such as RUB")
    if isinstance(quota, bool) or not isinstance(quota, int) or quota < 1:
        raise ValueError(f"{pid}: recording_quota_bytes must be a whole number of bytes >= 1")
    return Portal(pid, name, tz, currency, quota)


def parse(text: str, settings: Settings) -> tuple[Portal, dict[str, Portal]]:
    """(defaults, portal id -> Portal) of a portals file's text; ValueError when it is not valid."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("expected an object: portal id -> settings")
    base = Portal("*", "*", settings.dash_tz, None, settings.recording_quota_bytes)
    default = _entry("*", data.get("*", {}), base)
    portals = {pid: _entry(pid, raw, default) for pid, raw in data.items() if pid != "*"}
    return default, portals


class Portals:
    """The portals file of a dashboard (or only the defaults, without one)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = Path(settings.portals) if settings.portals else None
        self._lock = threading.Lock()
        self._stamp: Any = None
        self.default = Portal("*", "*", settings.dash_tz, None, settings.recording_quota_bytes)
        self._portals: dict[str, Portal] = {}
        if self.path is not None:
            try:
                self._load(strict=True)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"CALLSTREAM_PORTALS={self.path}: {exc}") from None

    def _load(self, strict: bool = False) -> None:
        st = self.path.stat()
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        if st.st_size > MAX_FILE:
            raise ValueError(f"larger than {MAX_FILE} bytes")
        try:
            default, portals = parse(self.path.read_text(encoding="utf-8"), self.settings)
        except ValueError:
            if strict:
                raise
            log.warning("portals file %s is not valid; keeping the last good version", self.path)
            self._stamp = stamp
            return
        self.default, self._portals, self._stamp = default, portals, stamp

    def get(self, portal_id: str) -> Portal:
        """The portal's settings (the defaults, named by its id, if the file does not list it)."""
        if self.path is not None:
            with self._lock:
                try:
                    self._load()
                except (OSError, ValueError):
                    log.warning("portals file %s unreadable; keeping the last good version", self.path)
        found = self._portals.get(portal_id)
        if found is not None:
            return found
        d = self.default
        return Portal(portal_id, portal_id, d.tz, d.currency, d.quota_bytes)

    def name(self, portal_id: Any) -> str:
        """A portal's display name (its id when it has none)."""
        return self.get(portal_id).name if isinstance(portal_id, str) else str(portal_id)

    def zone_of_view(self, shown: Sequence[str] | None, user_tz: str | None) -> str:
        """The zone of a view of ``shown`` portals (None: every portal)."""
        if shown is not None and len(set(shown)) == 1:
            return self.get(next(iter(shown))).tz
        return user_tz or self.settings.dash_tz

    def quota(self, shown: Sequence[str] | None) -> int:
        """The recording quota of the portals shown: their sum, or the global quota for all."""
        if shown is None:
            return self.settings.recording_quota_bytes
        return sum(self.get(p).quota_bytes for p in set(shown))
