"""Channels are Apprise URLs (``json://``, ``mailto://``, ``tgram://``, ``slack://``, ``bitrix24://`` …).

:func:`check_channel` says why a URL is unusable (for the rules file's
errors); :class:`Connection` sends one message at a time over one channel
and returns (delivered, error). Each sending thread has its own Connection:
the per-message idempotency key is set as an ``Idempotency-Key`` header on
channels that take headers (``json``, ``xml``, ``form``), and it is in every
message's text. Apprise's own retries stay off: :mod:`notify.sender` retries
with backoff and records the outcome.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from notify import bitrix24
from notify.text import Message

log = logging.getLogger(__name__)
KEY_HEADER = "Idempotency-Key"


def _apprise():
    import apprise

    bitrix24.register()
    return apprise


class _Quiet:
    """Apprise logs its own line for a URL it cannot parse; ours (one line, file and line) says it better."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("apprise")
        self._level = self._logger.level
        self._logger.setLevel(logging.CRITICAL + 1)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)


def check_channel(url: str) -> str | None:
    """Why ``url`` cannot be a channel, or None when Apprise can send to it."""
    apprise = _apprise()
    scheme = url.split("://", 1)[0] if "://" in url else ""
    try:
        with _Quiet():
            instance = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    except Exception as exc:  # noqa: BLE001 - a plugin's parser is third-party code
        return f"not a usable channel URL ({type(exc).__name__})"
    if instance is None:
        known = "" if not scheme else f" (scheme {scheme[:20]!r})"
        return f"not a channel URL Apprise can use{known}: see https://appriseit.com/services/"
    return None


def display(url: str) -> str:
    """The channel as people may see it: scheme, host and path, secrets masked, no options."""
    apprise = _apprise()
    try:
        with _Quiet():
            instance = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if instance is None:
            return url.split("://", 1)[0][:20] + "://(not a channel URL)"
        private = instance.url(privacy=True)
    except Exception:  # noqa: BLE001 - never show a secret because a plugin failed
        return url.split("://", 1)[0][:20] + "://(not a channel URL)"
    parts = urlsplit(private)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = "****@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{parts.path}"[:200]


class Connection:
    """One channel's Apprise service, for one thread."""

    def __init__(self, url: str, timeout_s: float) -> None:
        apprise = _apprise()
        self.url = url
        self._service = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if self._service is None:
            raise ValueError("not a channel URL Apprise can use")
        # One attempt takes at most the configured time (connect + read), whatever the plugin's default.
        self._service.socket_connect_timeout = min(timeout_s, self._service.socket_connect_timeout or timeout_s)
        self._service.socket_read_timeout = timeout_s
        # Apprise paces consecutive sends of one service (5.5 s for mail by default), which made a mail
        # channel deliver one message per 5.5 s per thread. Notify paces itself: a refusal (429 included)
        # is a failed attempt, retried with backoff.
        self._service.request_rate_per_sec = 0
        self._apprise = apprise.Apprise()
        self._apprise.add(self._service)

    def send(self, message: Message, key: str) -> tuple[bool, str]:
        """Send one message; (True, "") or (False, what went wrong, one line)."""
        headers = getattr(self._service, "headers", None)
        if isinstance(headers, dict):
            headers[KEY_HEADER] = key
        try:
            # Our text is plain: Apprise then escapes it for HTML channels and keeps its lines in mail.
            result = self._apprise.notify(body=message.body, title=message.title, body_format="text")
        except Exception as exc:  # noqa: BLE001 - a plugin bug is a failed attempt, not a dead sender
            return False, f"{type(exc).__name__}: {str(exc)[:200]}"
        if bool(result):
            return True, ""
        return False, _error_of(result)


def _error_of(result) -> str:
    lines = []
    try:
        for service in result:
            for entry in service.logs():
                if entry.level in ("WARNING", "ERROR", "CRITICAL"):
                    lines.append(str(entry.message))
    except Exception:  # noqa: BLE001 - the outcome matters, its wording less
        pass
    status = getattr(getattr(result, "status", None), "name", "FAILURE")
    return ("; ".join(dict.fromkeys(lines)) or status)[:300]
