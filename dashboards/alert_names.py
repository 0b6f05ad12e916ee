"""Alert types in words a portal administrator understands (both languages, via the catalogue)."""

from __future__ import annotations

from dashboards.i18n import N_, _

NAMES = {
    "controller_bypassed": N_("A call bypassed the licence Controller"),
    "controller_outage": N_("The licence Controller is not answering"),
    "stale_key": N_("A call used an out-of-date direct-access key"),
    "license_error": N_("A call was refused: licence error"),
    "config_not_found": N_("A development copy of the portal may be taking calls"),
    "extranet_call": N_("An extranet user called out on a paid line"),
    "unrated_call": N_("An answered call has no tariff"),
    "recording_missing": N_("A call recording is missing"),
    "spend_spike": N_("Unusual telephony spending"),
    "low_asr": N_("Few calls are being answered"),
    "recording_storage_80": N_("Recording storage is 80 % full"),
    "recording_storage_90": N_("Recording storage is 90 % full"),
    "recording_storage_100": N_("Recording storage is full"),
}
STATES = {"open": N_("open"), "resolved": N_("resolved"), "retracted": N_("withdrawn")}


def alert_name(kind: object) -> str:
    """The words for an alert type (an unknown type: as it is)."""
    return _(NAMES[kind]) if isinstance(kind, str) and kind in NAMES else str(kind)


def state_name(state: object) -> str:
    """The words for an alert state (none: open)."""
    return _(STATES.get(state if isinstance(state, str) else "open", str(state)))
