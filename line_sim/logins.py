"""The simulated line's logins: an engineer and a viewer with random passwords, kept in a 0600 file.

The edge node has no default user or password (edge_node/auth/README.md), so a newcomer's
first `factory-line run` creates these two in the edge's users file and prints the engineer's
password once. Later runs reuse what the credentials file holds; a user whose password no
longer matches it (the file was deleted or edited) gets a new random one, so the printed
login always works. Users added with `edge-node user add` are never touched.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher

from edge_node.auth import Role, UserError, UserStore
from factory_common.errors import SimError

USERS: tuple[tuple[str, Role], ...] = (("engineer", Role.ENGINEER), ("viewer", Role.VIEWER))
HEADER = (
    "# Logins for the simulated line's web page, written by `factory-line run`.\n"
    "# Keep this file private (mode 0600). One login a line: NAME ROLE PASSWORD.\n"
)


@dataclass(frozen=True)
class Login:
    name: str
    role: Role
    password: str
    new: bool  # created or reset by this run: the run prints the password


class CredentialsError(SimError, RuntimeError):
    """The credentials file cannot be read or written; the message says where and why."""


def read_credentials(path: Path) -> dict[str, str]:
    """NAME -> password from the file, {} when it does not exist; bad lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc}") from None
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            found[parts[0]] = parts[2]
    return found


def write_credentials(path: Path, logins: list[Login]) -> None:
    """Atomically, created 0600 from the start (never briefly readable by others)."""
    body = HEADER + "".join(f"{x.name} {x.role.label} {x.password}\n" for x in logins)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body)
        tmp.replace(path)
    except OSError as exc:
        raise CredentialsError(f"cannot write {path}: {exc}") from None


def ensure_logins(
    users_file: Path, credentials: Path, hasher: PasswordHasher | None = None
) -> list[Login]:
    """Make the line's users exist with the passwords in `credentials` (creating both as needed).

    Call before the edge node starts: argon2 hashing takes a moment and 64 MiB per password.
    """
    known = read_credentials(credentials)
    store = UserStore(users_file, hasher=hasher)
    try:
        existing = {user.name for user in store.users()}
        logins = [_ensure(store, name, role, known.get(name), existing) for name, role in USERS]
    finally:
        store.close()
    if any(login.new for login in logins) or not credentials.exists():
        write_credentials(credentials, logins)
    else:
        credentials.chmod(0o600)  # a copy restored with looser permissions
    return logins


def _ensure(
    store: UserStore, name: str, role: Role, password: str | None, existing: set[str]
) -> Login:
    if name in existing and password and store.verify(name, password):
        return Login(name, role, password, new=False)
    if name not in existing and password:  # the edge's data was deleted, the file kept
        try:
            store.add(name, role, password)
            return Login(name, role, password, new=False)
        except UserError:  # an edited file with a password the edge refuses: make a new one
            pass
    fresh = secrets.token_urlsafe(12)  # 16 characters, 96 random bits
    if name in existing:
        store.set_password(name, fresh)
    else:
        store.add(name, role, fresh)
    return Login(name, role, fresh, new=True)


def login_lines(logins: list[Login], credentials: Path) -> list[str]:
    """What the run prints under the URL: a password only when this run made it."""
    if not logins:
        return ["login  off (auth.enabled: false in the edge config): anyone here is an engineer"]
    where = shown_path(credentials)
    first, *others = logins
    if not first.new:
        names = ", ".join(x.name for x in others)
        return [f"login  {first.name} (or {names}): passwords in {where}"]
    lines = [f"login  {first.name} / {first.password}   (also in {where})"]
    lines += [f"       {x.name} / {x.password}   ({x.role.label}: read only)" for x in others]
    return lines


def shown_path(path: Path) -> str:
    """Relative to the current directory when under it (var/line/credentials.txt)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
