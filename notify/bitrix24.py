"""The Bitrix24 channel: an Apprise plugin that posts to a portal's incoming webhook.

A Bitrix24 incoming webhook is ``https://PORTAL/rest/USER_ID/TOKEN/``; a REST
method is called by appending its name. The channel URL is the same address
with the ``bitrix24`` scheme (``bitrix24http`` for a plain-HTTP portal or a
test receiver)::

    bitrix24://portal.example/rest/1/TOKEN/            system notification to user 1 (the webhook's)
    bitrix24://portal.example/rest/1/TOKEN/?to=5,7     ... to users 5 and 7
    bitrix24://portal.example/rest/1/TOKEN/?chat=chat42  a message in group chat 42 (im.message.add)

Notifications go through ``im.notify.system.add`` (USER_ID, MESSAGE; the
notification centre, where an administrator already looks); ``chat`` sends
through ``im.message.add`` (DIALOG_ID, MESSAGE). The webhook needs the
``im`` scope. Bitrix24 answers ``{"result": ...}`` or ``{"error": ...,
"error_description": ...}``; anything but a 2xx answer with a ``result`` is a
failure (the caller retries). The message text carries the idempotency key.
"""

from __future__ import annotations

import json
import re

import requests
from apprise.common import NotifyFormat, NotifyType
from apprise.manager_plugins import NotificationManager
from apprise.plugins.base import NotifyBase
from apprise.utils.parse import parse_list

_PATH = re.compile(r"^/rest/(?P<user>\d{1,12})/(?P<token>[A-Za-z0-9_]{1,128})/?$")
_TARGET = re.compile(r"^(?:\d{1,12}|chat\d{1,12})$")
MAX_MESSAGE = 20_000  # characters; Bitrix24 limits a chat message to about this


class NotifyBitrix24(NotifyBase):
    """Messages to a Bitrix24 portal through its incoming webhook."""

    service_name = "Bitrix24"
    protocol = "bitrix24http"
    secure_protocol = "bitrix24"
    setup_url = "https://apidocs.bitrix24.com/local-integrations/local-webhooks.html"
    notify_format = NotifyFormat.TEXT
    request_rate_per_sec = 0
    templates = ("{schema}://{host}/rest/{user_id}/{token}/", "{schema}://{host}:{port}/rest/{user_id}/{token}/")
    template_tokens = dict(NotifyBase.template_tokens, **{
        "host": {"name": "Portal", "type": "string", "required": True},
        "port": {"name": "Port", "type": "int", "min": 1, "max": 65535},
        "user_id": {"name": "Webhook user", "type": "string", "required": True},
        "token": {"name": "Webhook token", "type": "string", "private": True, "required": True},
    })
    template_args = dict(NotifyBase.template_args, **{
        "to": {"name": "Users", "type": "list:string"},
        "chat": {"name": "Chat", "type": "string"},
    })

    def __init__(self, user_id=None, token=None, targets=None, chat=None, **kwargs):
        super().__init__(**kwargs)
        if not user_id or not token:
            raise TypeError("a Bitrix24 webhook URL is https://PORTAL/rest/USER_ID/TOKEN/")
        self.user_id, self.token = str(user_id), str(token)
        self.targets = [t for t in parse_list(targets) if _TARGET.match(t)] or [self.user_id]
        if chat is not None and not _TARGET.match(str(chat)):
            raise TypeError("chat must be a chat id such as chat42")
        self.chat = str(chat) if chat else None

    @property
    def url_identifier(self):
        return (self.secure_protocol, self.host, self.port, self.user_id, self.token)

    def url(self, privacy=False, *args, **kwargs):
        """The channel URL (the token hidden when ``privacy``)."""
        params = self.url_parameters(*args, privacy=privacy, **kwargs)
        if self.chat:
            params["chat"] = self.chat
        elif self.targets != [self.user_id]:
            params["to"] = ",".join(self.targets)
        token = self.pprint(self.token, privacy, safe="")
        port = f":{self.port}" if self.port else ""
        schema = self.secure_protocol if self.secure else self.protocol
        return f"{schema}://{self.host}{port}/rest/{self.user_id}/{token}/?{self.urlencode(params)}"

    def endpoint(self, method: str) -> str:
        """The webhook address of a REST method."""
        port = f":{self.port}" if self.port else ""
        return f"{'https' if self.secure else 'http'}://{self.host}{port}/rest/{self.user_id}/{self.token}/{method}"

    def send(self, body, title="", notify_type=NotifyType.INFO, **kwargs):
        """Post the message to every target; False when one of them fails."""
        text = (f"[b]{title}[/b]\n{body}" if title else body)[:MAX_MESSAGE]
        calls = ([("im.message.add", {"DIALOG_ID": self.chat, "MESSAGE": text})] if self.chat else
                 [("im.notify.system.add", {"USER_ID": int(t), "MESSAGE": text}) for t in self.targets])
        ok = True
        for method, payload in calls:
            self.throttle()
            ok = self._call(method, payload) and ok
        return ok

    def _call(self, method: str, payload: dict) -> bool:
        try:
            response = requests.post(self.endpoint(method), data=json.dumps(payload),
                                     headers={"User-Agent": self.app_id, "Content-Type": "application/json",
                                              "Accept": "application/json"},
                                     verify=self.verify_certificate, timeout=self.request_timeout,
                                     allow_redirects=False)
        except requests.RequestException as exc:
            self.logger.warning(f"Bitrix24 {method}: connection error to {self.host}: {type(exc).__name__}")
            return False
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if 200 <= response.status_code < 300 and isinstance(answer, dict) and "result" in answer:
            return True
        error = answer.get("error_description") or answer.get("error") if isinstance(answer, dict) else None
        self.logger.warning(f"Bitrix24 {method}: HTTP {response.status_code}"
                            + (f": {str(error)[:200]}" if error else ""))
        return False

    @staticmethod
    def parse_url(url):
        """The constructor arguments of a ``bitrix24://`` URL, or None."""
        results = NotifyBase.parse_url(url, verify_host=True)
        if not results:
            return results
        # Apprise reads a scheme ending in "s" as the secure one; ours is plain "bitrix24".
        results["secure"] = results["schema"].lower() == NotifyBitrix24.secure_protocol
        found = _PATH.match(results.get("fullpath") or "")
        if not found:
            return None
        results["user_id"], results["token"] = found.group("user"), found.group("token")
        if "to" in results["qsd"]:
            results["targets"] = NotifyBitrix24.unquote(results["qsd"]["to"])
        if "chat" in results["qsd"]:
            results["chat"] = NotifyBitrix24.unquote(results["qsd"]["chat"])
        return results


def register() -> None:
    """Make ``bitrix24://`` and ``bitrix24http://`` known to Apprise (idempotent)."""
    manager = NotificationManager()  # a singleton: the one Apprise itself resolves schemes with
    if "bitrix24" not in manager:
        manager.add(NotifyBitrix24)
