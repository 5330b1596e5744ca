"""Users for tests of a running edge node: add one to its users file, log an httpx client in."""

from __future__ import annotations

from pathlib import Path

import httpx
from argon2 import PasswordHasher

from edge_node.auth import Role, UserStore

TEST_PASSWORD = "test-password-1234"
# Cheap parameters keep tests fast; the edge verifies any argon2 hash by its own parameters.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def add_user(
    data_dir: Path,
    name: str = "tester",
    role: Role = Role.ENGINEER,
    users_file: str = "users.sqlite",
) -> None:
    """Before the edge starts (or while it runs: the file is shared through SQLite); a user
    added by an earlier start of the same edge is kept."""
    users = UserStore(data_dir / users_file, hasher=FAST_HASHER)
    try:
        if all(user.name != name for user in users.users()):
            users.add(name, role, TEST_PASSWORD)
    finally:
        users.close()


async def log_in(client: httpx.AsyncClient, name: str = "tester") -> None:
    """Sets a bearer token on the client for every later request."""
    body = {"username": name, "password": TEST_PASSWORD, "client": "api"}
    response = await client.post("/api/login", json=body)
    response.raise_for_status()
    client.headers["Authorization"] = f"Bearer {response.json()['token']}"
