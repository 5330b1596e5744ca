"""`edge-node user ...` over a real users file; the first-start instruction (no default user)."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs
from typer.testing import CliRunner

from edge_node.auth import Role, User, UserStore, open_auth
from edge_node.cli import app
from edge_node.config import AuthConfig

runner = CliRunner()
PASSWORD = "bath-line-password"


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["user", *args], input=stdin)
    return result.exit_code, result.output


def test_add_list_passwd_remove(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    data = ["--data-dir", str(tmp_path)]
    code, out = run("add", "erin", "--role", "engineer", "--password-file", str(secret), *data)
    assert code == 0 and "added erin (engineer)" in out and PASSWORD not in out
    code, out = run("add", "vic", "--role", "viewer", *data, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert code == 0, out
    assert run("list", *data) == (0, "erin\tengineer\nvic\tviewer\n")
    secret.write_text(PASSWORD + "-2\n")
    assert run("passwd", "vic", "--password-file", str(secret), *data)[0] == 0
    users = UserStore(tmp_path / "users.sqlite")
    try:
        assert users.verify("vic", PASSWORD + "-2") == User("vic", Role.VIEWER)
    finally:
        users.close()
    assert run("remove", "vic", *data)[0] == 0
    assert run("list", *data) == (0, "erin\tengineer\n")


def test_bad_input_says_what_to_do(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, out = run("add", "x", "--role", "boss", *data, stdin="a\na\n")
    assert code == 1 and "unknown role 'boss'" in out
    code, out = run("add", "x", "--role", "viewer", *data, stdin="short\nshort\n")
    assert code == 1 and "at least 10 characters" in out
    code, out = run("add", "x", "--role", "viewer", "--password-file", str(tmp_path / "no"), *data)
    assert code == 2 and "cannot read --password-file" in out
    code, out = run("remove", "ghost", *data)
    assert code == 1 and "no user 'ghost'" in out


def test_first_start_without_users_prints_how_to_add_one_and_no_password(tmp_path: Path) -> None:
    with capture_logs() as logs:
        service = open_auth(AuthConfig(), tmp_path)
    service.close()
    (event,) = [e for e in logs if e["event"] == "no_users"]
    assert "edge-node user add NAME --role engineer" in event["detail"]
    assert str(tmp_path) in event["detail"] and "password" not in event["detail"]


def test_disabled_auth_warns_loudly(tmp_path: Path) -> None:
    with capture_logs() as logs:
        service = open_auth(AuthConfig(enabled=False), tmp_path)
    assert not service.enabled and not (tmp_path / "users.sqlite").exists()
    assert [e["log_level"] for e in logs if e["event"] == "auth_disabled"] == ["warning"]
