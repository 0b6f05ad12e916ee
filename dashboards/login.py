"""The login page: a plain HTML form (no script), every text translated and escaped."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from dashboards.i18n import _, current_locale

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f4f6;color:#111827;margin:0}
main{max-width:360px;margin:12vh auto;background:#fff;border-radius:10px;padding:28px 32px;
box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:20px;margin:0 0 18px}label{display:block;font-size:13px;margin:12px 0 4px;color:#374151}
input{width:100%;box-sizing:border-box;padding:8px 10px;border:1px solid #d1d5db;border-radius:6px;font-size:15px}
button{margin-top:18px;width:100%;padding:9px;border:0;border-radius:6px;background:#2563eb;color:#fff;font-size:15px}
.error{background:#fef2f2;color:#991b1b;border-radius:6px;padding:8px 10px;font-size:14px;margin-bottom:8px}
.langs{margin-top:16px;font-size:13px;text-align:center}.langs a{margin:0 6px;color:#2563eb}
"""


def safe_next(value: object) -> str:
    """A path of this site to return to after login (anything else: the Overview)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") \
            or "\\" in value or any(ord(c) < 32 for c in value) or len(value) > 2000:
        return "/"
    return value


def page(next_path: str, error: str = "", name: str = "") -> str:
    """The login form, posting to /login with the page to return to."""
    nxt = escape(safe_next(next_path), quote=True)
    lang = current_locale()
    note = f'<div class="error" id="login-error">{escape(error)}</div>' if error else ""
    langs = " ".join(f'<a href="/lang/{code}?next={quote("/login?next=" + safe_next(next_path), safe="")}" '
                     f'id="lang-{code}">{label}</a>' for code, label in (("en", "English"), ("ru", "Русский")))
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{escape(_('Log in'))} · callstream</title><style>{_STYLE}</style></head><body><main>"
            f"<h1>callstream</h1>{note}"
            f'<form method="post" action="/login" id="login-form">'
            f'<input type="hidden" name="next" value="{nxt}">'
            f'<label for="login-name">{escape(_("User name"))}</label>'
            f'<input id="login-name" name="name" autocomplete="username" required maxlength="64" '
            f'value="{escape(name, quote=True)}" autofocus>'
            f'<label for="login-password">{escape(_("Password"))}</label>'
            f'<input id="login-password" name="password" type="password" autocomplete="current-password" '
            f'required maxlength="1024">'
            f'<button type="submit" id="login-submit">{escape(_("Log in"))}</button></form>'
            f'<div class="langs">{langs}</div></main></body></html>')
