"""Users, sessions, roles and the login throttle of the edge node, over a real users file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from edge_node.auth import Role, User, UserError, UserStore
from edge_node.auth.limiter import LoginLimiter

FAST = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)  # tests only
PASSWORD = "tulip-anodize-42"


@pytest.fixture
def users(tmp_path: Path):
    store = UserStore(tmp_path / "users.sqlite", hasher=FAST)
    yield store
    store.close()


def test_roles_are_ordered_and_parsed_by_name() -> None:
    assert Role.VIEWER < Role.OPERATOR < Role.ENGINEER
    assert Role.parse(" Operator ") is Role.OPERATOR
    assert User("a", Role.ENGINEER).may(Role.OPERATOR)
    assert not User("a", Role.VIEWER).may(Role.OPERATOR)
    with pytest.raises(ValueError, match="unknown role 'boss': use one of viewer, operator"):
        Role.parse("boss")


def test_password_is_stored_as_an_argon2id_hash_and_verified(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.sqlite")  # the library's default parameters
    try:
        store.add("ann", Role.OPERATOR, PASSWORD)
        assert store.verify("ann", PASSWORD) == User("ann", Role.OPERATOR)
        assert store.verify("ann", PASSWORD + "x") is None
        assert store.verify("nobody", PASSWORD) is None
    finally:
        store.close()
    (stored,) = sqlite3.connect(tmp_path / "users.sqlite").execute("SELECT hash FROM users")
    assert stored[0].startswith("$argon2id$") and PASSWORD not in stored[0]


def test_bad_names_short_passwords_and_duplicates_are_refused(users: UserStore) -> None:
    with pytest.raises(UserError, match="at least 10 characters"):
        users.add("ann", Role.VIEWER, "short")
    with pytest.raises(UserError, match="invalid user name"):
        users.add("a b", Role.VIEWER, PASSWORD)
    users.add("ann", Role.VIEWER, PASSWORD)
    with pytest.raises(UserError, match=r"exists.*user passwd"):
        users.add("ann", Role.ENGINEER, PASSWORD)
    with pytest.raises(UserError, match="no user 'bob'"):
        users.remove("bob")
    assert users.users() == [User("ann", Role.VIEWER)]


def test_sessions_are_looked_up_by_token_and_only_its_hash_is_kept(
    users: UserStore, tmp_path: Path
) -> None:
    ann = users.add("ann", Role.ENGINEER, PASSWORD)
    token, _ = users.open_session(ann, 60)
    assert users.session_user(token) == ann and users.session_user(token + "x") is None
    raw = (tmp_path / "users.sqlite").read_bytes()
    assert token.encode() not in raw
    assert users.close_session(token) and users.session_user(token) is None
    expired, _ = users.open_session(ann, -1)
    assert users.session_user(expired) is None


def test_new_password_or_removal_ends_open_sessions(users: UserStore) -> None:
    ann = users.add("ann", Role.ENGINEER, PASSWORD)
    first, _ = users.open_session(ann, 60)
    users.set_password("ann", PASSWORD + "-new")
    assert users.session_user(first) is None
    assert users.verify("ann", PASSWORD) is None and users.verify("ann", PASSWORD + "-new")
    second, _ = users.open_session(ann, 60)
    users.remove("ann")
    assert users.session_user(second) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_blocks_a_user_after_max_failures_until_the_window_passes() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(3, 60.0, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("ann", "10.0.0.1") == 0
        limiter.failed("ann", "10.0.0.1")
        clock.now += 1
    assert limiter.retry_after("ann", "10.0.0.9") == pytest.approx(57.0)  # any address
    assert limiter.retry_after("bob", "10.0.0.1") == 0  # the address is below 4x3
    clock.now += 57
    assert limiter.retry_after("ann", "10.0.0.1") == 0


def test_limiter_counts_per_address_across_names_and_success_keeps_the_address_count() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(2, 60.0, ip_factor=3, clock=clock)
    for i in range(6):
        limiter.failed(f"user{i}", "10.0.0.1")
    limiter.succeeded("user5")
    assert limiter.retry_after("someone", "10.0.0.1") > 0
    assert limiter.retry_after("someone", "10.0.0.2") == 0
