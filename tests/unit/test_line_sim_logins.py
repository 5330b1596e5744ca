"""The simulated line's logins: created once with random passwords, kept private, reused."""

from __future__ import annotations

import stat
from pathlib import Path

from edge_node.auth import Role, UserStore
from line_sim.logins import ensure_logins, login_lines, read_credentials
from tests.support.edge_auth import FAST_HASHER, TEST_PASSWORD


def _paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "edge" / "users.sqlite", tmp_path / "credentials.txt"


def _verifies(users_file: Path, name: str, password: str) -> Role | None:
    store = UserStore(users_file, hasher=FAST_HASHER)
    try:
        user = store.verify(name, password)
    finally:
        store.close()
    return user.role if user else None


def test_first_run_creates_an_engineer_and_a_viewer_with_random_passwords(tmp_path: Path) -> None:
    users, credentials = _paths(tmp_path)
    logins = ensure_logins(users, credentials, hasher=FAST_HASHER)
    assert [(x.name, x.role, x.new) for x in logins] == [
        ("engineer", Role.ENGINEER, True),
        ("viewer", Role.VIEWER, True),
    ]
    for login in logins:
        assert len(login.password) >= 16
        assert _verifies(users, login.name, login.password) == login.role
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert read_credentials(credentials) == {x.name: x.password for x in logins}
    # Another machine (another data dir) gets other passwords: nothing is a fixed default.
    other = ensure_logins(*_paths(tmp_path / "other"), hasher=FAST_HASHER)
    assert {x.password for x in other}.isdisjoint({x.password for x in logins})


def test_a_later_run_reuses_them_and_leaves_the_file_alone(tmp_path: Path) -> None:
    users, credentials = _paths(tmp_path)
    first = ensure_logins(users, credentials, hasher=FAST_HASHER)
    before = credentials.read_text()
    credentials.chmod(0o644)  # e.g. restored from a backup
    again = ensure_logins(users, credentials, hasher=FAST_HASHER)
    assert [(x.password, x.new) for x in again] == [(x.password, False) for x in first]
    assert credentials.read_text() == before
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


def test_a_lost_credentials_file_gets_new_passwords_that_work(tmp_path: Path) -> None:
    users, credentials = _paths(tmp_path)
    first = ensure_logins(users, credentials, hasher=FAST_HASHER)
    credentials.unlink()
    second = ensure_logins(users, credentials, hasher=FAST_HASHER)
    assert all(x.new for x in second)
    for old, new in zip(first, second, strict=True):
        assert _verifies(users, old.name, old.password) is None
        assert _verifies(users, new.name, new.password) == new.role


def test_deleted_edge_data_is_given_back_the_passwords_of_the_file(tmp_path: Path) -> None:
    users, credentials = _paths(tmp_path)
    first = ensure_logins(users, credentials, hasher=FAST_HASHER)
    for path in users.parent.iterdir():
        path.unlink()
    second = ensure_logins(users, credentials, hasher=FAST_HASHER)
    assert [(x.password, x.new) for x in second] == [(x.password, False) for x in first]
    assert _verifies(users, "engineer", first[0].password) == Role.ENGINEER


def test_an_edited_file_with_a_refused_password_gets_a_new_one(tmp_path: Path) -> None:
    users, credentials = _paths(tmp_path)
    credentials.write_text("engineer engineer short\n")
    logins = ensure_logins(users, credentials, hasher=FAST_HASHER)
    assert logins[0].new and logins[0].password != "short"
    assert read_credentials(credentials)["engineer"] == logins[0].password


def test_users_added_by_hand_are_not_touched(tmp_path: Path) -> None:
    users, credentials = _paths(tmp_path)
    store = UserStore(users, hasher=FAST_HASHER)
    store.add("erin", Role.OPERATOR, TEST_PASSWORD)
    store.close()
    ensure_logins(users, credentials, hasher=FAST_HASHER)
    ensure_logins(users, credentials, hasher=FAST_HASHER)
    assert _verifies(users, "erin", TEST_PASSWORD) == Role.OPERATOR
    assert "erin" not in read_credentials(credentials)


def test_the_password_is_printed_only_by_the_run_that_made_it(tmp_path: Path) -> None:
    users, credentials = _paths(tmp_path)
    first = ensure_logins(users, credentials, hasher=FAST_HASHER)
    shown = "\n".join(login_lines(first, credentials))
    assert f"engineer / {first[0].password}" in shown and str(credentials) in shown
    reused = ensure_logins(users, credentials, hasher=FAST_HASHER)
    again = "\n".join(login_lines(reused, credentials))
    assert first[0].password not in again and first[1].password not in again
    assert "engineer" in again and str(credentials) in again
    assert "login  off" in login_lines([], credentials)[0]
