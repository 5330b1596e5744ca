"""Users, roles and server-side sessions of the edge node, in their own small SQLite file.

Passwords are stored as argon2id hashes (argon2-cffi). Session and API tokens are 256-bit
random strings handed to the client once; the file keeps only their SHA-256, so a copied
users file opens no session.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from factory_common.errors import EdgeError
from factory_common.sqlite import open_db

MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 BLOB PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions(expires_at);
"""


class Role(IntEnum):
    """Ordered: a role may do everything the roles below it may."""

    VIEWER = 1  # reads values, history, alarms
    OPERATOR = 2  # also acknowledges alarms
    ENGINEER = 3  # also sends setpoints and recipes to devices

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(r.name.lower() for r in cls)
            raise ValueError(f"unknown role {text!r}: use one of {names}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    def may(self, role: Role) -> bool:
        return self.role >= role


class UserError(EdgeError, ValueError):
    """A user cannot be added or changed as asked; the message says what to do instead."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UserError(
            f"invalid user name {name!r}: 1-64 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password too short: use at least {MIN_PASSWORD} characters")
    return password


class UserStore:
    """Thread-safe (API handlers run in a thread pool); every write is one transaction."""

    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        self.path = path
        self._db = open_db(path)
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._hasher = hasher or PasswordHasher()
        # Verified against for unknown names, so a wrong name costs as long as a wrong password.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ users

    def add(self, name: str, role: Role, password: str) -> User:
        digest = self._hasher.hash(check_password(password))
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO users(name, role, hash, created_at) VALUES (?, ?, ?, ?)",
                    (check_name(name), role.label, digest, int(time.time())),
                )
            except sqlite3.IntegrityError:
                raise UserError(
                    f"user {name!r} exists: remove it first or use `edge-node user passwd`"
                ) from None
        return User(name, role)

    def set_password(self, name: str, password: str) -> None:
        digest = self._hasher.hash(check_password(password))
        with self._lock:
            changed = self._db.execute("UPDATE users SET hash=? WHERE name=?", (digest, name))
            if not changed.rowcount:
                raise UserError(f"no user {name!r}: see `edge-node user list`")
            # A new password ends every session opened with the old one.
            self._db.execute("DELETE FROM sessions WHERE user=?", (name,))

    def remove(self, name: str) -> None:
        with self._lock:
            if not self._db.execute("DELETE FROM users WHERE name=?", (name,)).rowcount:
                raise UserError(f"no user {name!r}: see `edge-node user list`")

    def users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute("SELECT name, role FROM users ORDER BY name").fetchall()
        return [User(name, Role.parse(role)) for name, role in rows]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM users").fetchone()[0]

    def verify(self, name: str, password: str) -> User | None:
        """The user if the password matches; slow by design (argon2), call it off the loop."""
        with self._lock:
            row = self._db.execute("SELECT role, hash FROM users WHERE name=?", (name,)).fetchone()
        try:
            self._hasher.verify(row[1] if row else self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(row[1]):  # parameters raised since it was stored
            with self._lock:
                new = self._hasher.hash(password)
                self._db.execute("UPDATE users SET hash=? WHERE name=?", (new, name))
        return User(name, Role.parse(row[0]))

    # --------------------------------------------------------------- sessions

    def open_session(self, user: User, ttl_s: float, kind: str = "cookie") -> tuple[str, int]:
        """A new random token and its expiry (epoch s); only the token's hash is kept."""
        token = secrets.token_urlsafe(32)
        now = int(time.time())
        expires = now + int(ttl_s)
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            self._db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                (_digest(token), user.name, kind, now, expires),
            )
        return token, expires

    def session_user(self, token: str) -> User | None:
        with self._lock:
            row = self._db.execute(
                "SELECT u.name, u.role FROM sessions s JOIN users u ON u.name = s.user "
                "WHERE s.token_sha256 = ? AND s.expires_at > ?",
                (_digest(token), int(time.time())),
            ).fetchone()
        return User(row[0], Role.parse(row[1])) if row else None

    def close_session(self, token: str) -> bool:
        with self._lock:
            done = self._db.execute("DELETE FROM sessions WHERE token_sha256=?", (_digest(token),))
        return done.rowcount > 0
