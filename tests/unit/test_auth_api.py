"""Login over HTTP: cookies and bearer tokens, every /api route closed without one, roles on
commands, the throttle, the redirect to the login page, and no secret in any log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
from fastapi.testclient import TestClient

from edge_node.api import create_app
from edge_node.auth import OPEN_PATHS, AuthService, Role, UserStore
from edge_node.auth.service import VERIFY_SLOTS
from edge_node.config import AuthConfig
from edge_node.ingest import IngestStats
from edge_node.routes import auth as auth_routes
from edge_node.store import Store
from factory_common.logs import configure
from factory_common.wire import Write
from tests.unit.test_auth import FAST, PASSWORD


@dataclass
class Outcome:
    status: str
    detail: str = ""

    def as_dict(self) -> dict:
        return {
            "id": "c1",
            "gateway": "gw1",
            "status": self.status,
            "ok": True,
            "writes": [],
            "issued_by": "erin",
            "issued_at": 0,
            "finished_at": 0,
            "detail": self.detail,
        }


class RecordingSender:
    """Stands in for edge_node.commands.CommandSender at the route seam: records what reached it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Write], str]] = []

    async def send(
        self,
        gateway: str,
        writes: list[Write],
        *,
        issued_by: str,
        timeout: float,  # noqa: ASYNC109
    ) -> Outcome:
        self.sent.append((gateway, writes, issued_by))
        return Outcome("done")


@pytest.fixture
def app_parts(tmp_path: Path):
    store = Store(tmp_path / "ts.sqlite")
    users = UserStore(tmp_path / "users.sqlite", hasher=FAST)
    for name, role in (("vic", Role.VIEWER), ("otto", Role.OPERATOR), ("erin", Role.ENGINEER)):
        users.add(name, role, PASSWORD)
    auth = AuthService(users, AuthConfig(max_failures=3))
    app = create_app(store, IngestStats(), edge_id="e1", auth=auth)
    app.state.commands = RecordingSender()
    yield app
    users.close()
    store.close()


@pytest.fixture
def client(app_parts) -> TestClient:
    with TestClient(app_parts) as test_client:
        yield test_client


def login(http: TestClient, name: str, kind: str = "browser") -> dict:
    body = {"username": name, "password": PASSWORD, "client": kind}
    response = http.post("/api/login", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_api_route_but_the_open_ones_refuses_anonymous_callers(app_parts, client) -> None:
    # Walk the OpenAPI description: a route another helper adds later is checked too.
    paths = app_parts.openapi()["paths"]
    assert len(paths) >= 8
    for path, operations in paths.items():
        for method in operations:
            response = client.request(method, path.replace("{", "").replace("}", ""))
            if path in OPEN_PATHS or not path.startswith("/api/"):
                assert response.status_code != 401, path
            else:
                assert response.status_code == 401, (method, path)
                assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/health").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_browser_login_sets_a_strict_httponly_cookie_and_logout_ends_it(client) -> None:
    body = login(client, "vic")
    assert body["role"] == "viewer" and body["token"] is None
    cookie = client.cookies.get("edge_session")
    header = next(
        v
        for k, v in client.post(
            "/api/login", json={"username": "vic", "password": PASSWORD}
        ).headers.items()
        if k == "set-cookie"
    )
    assert "HttpOnly" in header and "SameSite=strict" in header and "Path=/" in header
    assert cookie and client.get("/api/tags").status_code == 200
    assert client.get("/api/auth").json() == {
        "auth_enabled": True,
        "users_exist": True,
        "user": "vic",
        "role": "viewer",
    }
    assert client.post("/api/logout").status_code == 204
    assert client.get("/api/tags").status_code == 401


def test_api_clients_get_a_bearer_token_and_no_cookie(client) -> None:
    body = login(client, "erin", "api")
    assert body["token"] and not client.cookies
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/api/tags", headers=headers).status_code == 200
    assert client.get("/api/tags", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_commands_need_an_engineer_and_a_viewer_never_reaches_the_sender(app_parts, client) -> None:
    command = {"gateway": "gw1", "writes": [{"device": "bath", "tag": "sp", "value": 21.5}]}
    for name in ("vic", "otto"):
        login(client, name)
        response = client.post("/api/commands", json=command)
        assert response.status_code == 403 and "engineer" in response.json()["detail"]
    assert app_parts.state.commands.sent == []
    login(client, "erin")
    response = client.post("/api/commands", json=command)
    assert response.status_code == 200 and response.json()["status"] == "done"
    ((gateway, writes, who),) = app_parts.state.commands.sent
    assert (gateway, writes, who) == ("gw1", [Write("bath", "sp", 21.5)], "erin")


def test_cookie_writes_from_another_site_are_refused(client) -> None:
    login(client, "erin")
    command = {"gateway": "gw1", "writes": [{"device": "bath", "tag": "sp", "value": 1}]}
    evil = client.post("/api/commands", json=command, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and "cross-site" in evil.json()["detail"]


def test_failed_logins_are_throttled_per_user_even_with_the_right_password(client) -> None:
    for _ in range(3):
        wrong = client.post("/api/login", json={"username": "otto", "password": "guess-guess"})
        assert wrong.status_code == 401
    blocked = client.post("/api/login", json={"username": "otto", "password": PASSWORD})
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    login(client, "erin")  # another user from the same address is still let in


def test_the_page_redirects_to_the_login_form_until_logged_in(client) -> None:
    first = client.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login"
    assert "login.js" in client.get("/login").text
    login(client, "vic")
    assert "uPlot" in client.get("/").text


def test_no_users_yet_says_how_to_make_the_first(tmp_path: Path) -> None:
    store = Store(tmp_path / "ts.sqlite")
    users = UserStore(tmp_path / "users.sqlite", hasher=FAST)
    app = create_app(store, IngestStats(), auth=AuthService(users))
    with TestClient(app) as client:
        response = client.post("/api/login", json={"username": "a", "password": "b"})
        assert response.status_code == 503 and "edge-node user add" in response.json()["detail"]
        assert client.get("/api/auth").json()["users_exist"] is False
    users.close()
    store.close()


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The process's log setup (processors incl. redaction, JSON) printing into a buffer;
    the previous setup is restored so later tests do not print into this one."""
    saved = structlog.get_config()
    configure(json=True, level="debug")
    buffer = io.StringIO()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=buffer))
    yield buffer
    structlog.configure(**saved)


def test_secrets_never_reach_the_logs(client, json_logs: io.StringIO, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client.post("/api/login", json={"username": "otto", "password": "wrong-" + PASSWORD})
    token = login(client, "erin", "api")["token"]
    login(client, "vic")
    cookie = client.cookies.get("edge_session")
    client.post("/api/logout")
    output = json_logs.getvalue() + caplog.text
    assert '"event": "login_failed"' in output and '"user": "erin"' in output
    for secret in (PASSWORD, token, cookie):
        assert secret not in output


def test_password_checks_at_once_are_bounded(app_parts, client, monkeypatch) -> None:
    """argon2 needs 64 MiB per check: a burst waits for a slot, then gets 503, not memory."""
    monkeypatch.setattr(auth_routes, "VERIFY_WAIT_S", 0.05)
    slots = app_parts.state.auth.verifying
    held = [slots.acquire(blocking=False) for _ in range(VERIFY_SLOTS)]
    assert all(held) and not slots.acquire(blocking=False)
    busy = client.post("/api/login", json={"username": "vic", "password": PASSWORD})
    assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
    for _ in held:
        slots.release()
    login(client, "vic")
