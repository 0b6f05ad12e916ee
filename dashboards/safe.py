"""What may become a link or an audio player: http(s) URLs only, checked, never raw HTML."""

from __future__ import annotations

from urllib.parse import urlsplit

PLAYABLE = (".mp3", ".wav", ".ogg", ".m4a")
MAX_URL = 2048


def safe_url(value: object) -> str | None:
    """``value`` if it is an absolute http:// or https:// URL with a host, else None.

    Rejects ``javascript:``, ``data:``, protocol-relative and credential-bearing URLs and
    anything with control characters or spaces, so a link never runs script or misleads.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        return None
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
        return None
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname or not port_ok:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    return value


def playable(url: str | None) -> bool:
    """True when a browser's audio element can play the (safe) URL: a known audio file type."""
    if url is None or safe_url(url) is None:
        return False
    return urlsplit(url).path.lower().endswith(PLAYABLE)
