"""The dashboard's account store: users, roles, portals, the session secret and the audit log.

One SQLite file (``Settings.accounts_path``: ``accounts.sqlite`` inside the
warehouse directory unless ``CALLSTREAM_ACCOUNTS`` says otherwise), so it
survives restarts, is copied with the warehouse, and ``callstream users``
changes it while the dashboard runs (each operation opens its own
connection: after a rebuild's swap the path names the new generation's copy,
which the swap carried over). The file is created private (mode 0600).

Passwords are kept only as scrypt hashes (``hashlib.scrypt``, memory-hard:
16 MiB per hash), with a random salt each; a clear password is never stored,
logged or echoed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROLES = ("operator", "portal_admin", "viewer")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAX_PORTAL = 200
MAX_PASSWORD = 1024
MIN_PASSWORD = 8
AUDIT_KEEP = 100_000  # rows of the audit log kept; older ones are deleted as new ones come
# scrypt cost: N=2^14, r=8 -> 16 MiB and ~50 ms per hash on this machine's cores.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY, role TEXT NOT NULL, portals TEXT NOT NULL, listen INTEGER NOT NULL,
  tz TEXT, locale TEXT, hash TEXT NOT NULL, changed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, user TEXT NOT NULL,
  action TEXT NOT NULL, detail TEXT NOT NULL);
"""


class AccountError(ValueError):
    """A user name, role, portal list or password the store refuses (the message says why)."""


@dataclass(frozen=True)
class User:
    """One account: what it may see and do. ``portals`` is empty for operators (they see all)."""

    name: str
    role: str
    portals: tuple[str, ...] = ()
    listen: bool = False
    tz: str | None = None
    locale: str | None = None
    stamp: str = ""  # a fingerprint of the password hash: a new password ends old sessions

    @property
    def scope(self) -> tuple[str, ...] | None:
        """The portals this user may see (None: every portal)."""
        return None if self.role == "operator" else self.portals

    @property
    def can_download(self) -> bool:
        """CSV downloads: operators and portal administrators."""
        return self.role in ("operator", "portal_admin")

    @property
    def can_listen(self) -> bool:
        """Recordings: the ``listen_recordings`` right, never for viewers."""
        return self.listen and self.role != "viewer"

    @property
    def can_audit(self) -> bool:
        """The audit log: operators only."""
        return self.role == "operator"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) of ``password``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 * 1024 * 1024, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` hashes to ``stored`` (constant-time comparison)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt" or len(password) > MAX_PASSWORD:
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=64 * 1024 * 1024, dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def check_name(name: Any) -> str:
    """A valid user name (letters, digits, ``._@-``, at most 64), else AccountError."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise AccountError("a user name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a "
                           "letter or digit")
    return name


def check_password(password: str) -> str:
    """A password the store accepts: 8-1024 characters, no line break."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD or "\n" in password or "\r" in password:
        raise AccountError(f"a password has {MIN_PASSWORD}-{MAX_PASSWORD} characters and no line break")
    return password


def check_grant(role: str, portals: tuple[str, ...], listen: bool) -> None:
    """Refuse a role the store does not know, or portals that do not fit it."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if role == "operator" and portals:
        raise AccountError("an operator sees every portal: give no --portal")
    if role != "operator" and not portals:
        raise AccountError(f"a {role} needs at least one --portal")
    if role == "viewer" and listen:
        raise AccountError("a viewer cannot listen to recordings")
    for portal in portals:
        if not 1 <= len(portal) <= MAX_PORTAL or any(ord(c) < 32 for c in portal):
            raise AccountError(f"a portal id has 1-{MAX_PORTAL} printable characters: {portal[:40]!r}")


def _stamp(stored: str) -> str:
    return hashlib.sha256(stored.encode()).hexdigest()[:16]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    """The account store at ``path`` (created on first write; reading a missing one finds nobody)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cache: tuple[tuple[int, int, int], dict[str, tuple[User, str]]] | None = None

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if not create and not self.path.is_file():
            return None
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Private from the first byte: open(2) with 0600 before SQLite writes anything.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        con.execute("PRAGMA busy_timeout = 10000")
        if create:
            con.executescript(_SCHEMA)
        return con

    def _rows(self) -> dict[str, tuple[User, str]]:
        """name -> (User, stored hash), re-read only when the file changed."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
        con = self._connect(create=False)
        if con is None:
            return {}
        with closing(con):
            try:
                rows = con.execute("SELECT name, role, portals, listen, tz, locale, hash FROM users").fetchall()
            except sqlite3.OperationalError:  # an empty file: no table yet
                rows = []
        users = {n: (User(n, role, tuple(json.loads(p)), bool(li), tz, loc, _stamp(h)), h)
                 for n, role, p, li, tz, loc, h in rows}
        with self._lock:
            self._cache = (key, users)
        return users

    def users(self) -> list[User]:
        """Every account, by name."""
        return [u for _, (u, _) in sorted(self._rows().items())]

    def get(self, name: str) -> User | None:
        """The account called ``name``, or None."""
        found = self._rows().get(name)
        return found[0] if found else None

    def any(self) -> bool:
        """True once at least one account exists."""
        return bool(self._rows())

    def authenticate(self, name: str, password: str) -> User | None:
        """The account when ``password`` is its password, else None (the same time either way)."""
        found = self._rows().get(name)
        stored = found[1] if found else _DUMMY_HASH  # hash anyway: no timing tells the names apart
        ok = verify_password(password, stored)
        return found[0] if found and ok else None

    def add(self, name: str, role: str, portals: tuple[str, ...], password: str, *, listen: bool = False,
            tz: str | None = None, locale: str | None = None) -> User:
        """Create an account; AccountError if the name is taken or anything is invalid."""
        check_name(name)
        portals = tuple(sorted(set(portals)))
        check_grant(role, portals, listen)
        stored = hash_password(check_password(password))
        con = self._connect(create=True)
        with closing(con):
            try:
                con.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (name, role, json.dumps(portals), int(listen), tz, locale, stored, _now()))
            except sqlite3.IntegrityError:
                raise AccountError(f"user {name} exists (remove it first, or change its password)") from None
        return User(name, role, portals, listen, tz, locale, _stamp(stored))

    def remove(self, name: str) -> bool:
        """Delete an account (its sessions end with it); False when there was none."""
        con = self._connect(create=False)
        if con is None:
            return False
        with closing(con):
            return con.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def set_password(self, name: str, password: str) -> bool:
        """A new password (every session of the account ends); False when there is no such user."""
        stored = hash_password(check_password(password))
        con = self._connect(create=False)
        if con is None:
            return False
        with closing(con):
            return con.execute("UPDATE users SET hash = ?, changed_at = ? WHERE name = ?",
                               (stored, _now(), name)).rowcount > 0

    def set_preferences(self, name: str, *, tz: str | None = None, locale: str | None = None) -> None:
        """Remember a user's chosen language and/or time zone."""
        con = self._connect(create=False)
        if con is None:
            return
        with closing(con):
            if locale is not None:
                con.execute("UPDATE users SET locale = ? WHERE name = ?", (locale, name))
            if tz is not None:
                con.execute("UPDATE users SET tz = ? WHERE name = ?", (tz, name))

    def secret(self) -> bytes:
        """The key that signs session cookies: made once, kept in the store (sessions survive restarts)."""
        con = self._connect(create=True)
        with closing(con):
            con.execute("INSERT OR IGNORE INTO meta VALUES ('session_secret', ?)", (secrets.token_hex(32),))
            return bytes.fromhex(con.execute("SELECT value FROM meta WHERE key = 'session_secret'").fetchone()[0])

    def audit(self, user: str, action: str, detail: dict[str, Any]) -> None:
        """Append one audit entry (who, what, the filter as JSON); the oldest go past AUDIT_KEEP."""
        con = self._connect(create=True)
        with closing(con):
            cur = con.execute("INSERT INTO audit (ts, user, action, detail) VALUES (?, ?, ?, ?)",
                              (_now(), user, action, json.dumps(detail, sort_keys=True, default=str)[:4000]))
            if cur.lastrowid % 1000 == 0:
                con.execute("DELETE FROM audit WHERE id <= ?", (cur.lastrowid - AUDIT_KEEP,))

    def audit_log(self, *, limit: int = 200) -> list[dict[str, Any]]:
        """The newest audit entries first: ts, user, action, detail (parsed)."""
        con = self._connect(create=False)
        if con is None:
            return []
        with closing(con):
            try:
                rows = con.execute("SELECT ts, user, action, detail FROM audit ORDER BY id DESC LIMIT ?",
                                   (limit,)).fetchall()
            except sqlite3.OperationalError:
                return []
        return [{"ts": ts, "user": user, "action": action, "detail": json.loads(detail)}
                for ts, user, action, detail in rows]

    def copy_to(self, target: Path) -> bool:
        """A consistent copy of the store at ``target`` (SQLite's backup API); False when there is none."""
        con = self._connect(create=False)
        if con is None:
            return False
        with closing(con), closing(sqlite3.connect(target)) as out:
            con.backup(out)
        os.chmod(target, 0o600)
        return True


_DUMMY_HASH = hash_password("not a password of anyone", salt=b"\0" * 16)

