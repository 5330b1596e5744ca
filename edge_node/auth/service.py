"""Login, sessions and role checks for the HTTP API: the `require_role` dependency lives here.

Every path under /api needs a logged-in user (at least a viewer) unless it is in OPEN_PATHS:
the app installs `api_guard` as an app-wide dependency, so a route someone adds later is
closed by default. Routes that change things add `Depends(require_role(Role.OPERATOR))` or
`ENGINEER` on top. A client authenticates with the session cookie the login sets (browsers)
or with `Authorization: Bearer <token>` (scripts, other services).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from edge_node.auth.limiter import LoginLimiter
from edge_node.auth.users import Role, User, UserStore
from edge_node.config import AuthConfig
from factory_common.logs import get_logger

COOKIE = "edge_session"
VERIFY_SLOTS = 2  # password checks at once (the edge's small CPU; others wait briefly)
# Probes and scrapers carry no login: health says only up/degraded, metrics only counters.
OPEN_PATHS = frozenset({"/api/health", "/api/login", "/api/logout", "/api/auth", "/metrics"})
ANONYMOUS_ENGINEER = User("anonymous", Role.ENGINEER)  # auth.enabled: false only

_cookie = APIKeyCookie(name=COOKIE, auto_error=False, description="set by POST /api/login")
_bearer = HTTPBearer(auto_error=False, description="token from POST /api/login with client=api")


@dataclass
class AuthService:
    """What the routes need: the user file, the throttle and the session lifetimes."""

    users: UserStore | None  # None: authentication disabled (bench/lab only)
    config: AuthConfig = field(default_factory=AuthConfig)
    limiter: LoginLimiter = field(init=False)
    # argon2 takes 64 MiB and tens of ms per check: a burst of logins must not exhaust memory.
    verifying: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(VERIFY_SLOTS)
    )

    def __post_init__(self) -> None:
        self.limiter = LoginLimiter(self.config.max_failures, self.config.failure_window_s)

    @property
    def enabled(self) -> bool:
        return self.users is not None

    def close(self) -> None:
        if self.users is not None:
            self.users.close()

    def session_ttl(self, kind: str) -> float:
        if kind == "api":
            return self.config.token_days * 86400
        return self.config.session_hours * 3600


def auth_service(request: Request) -> AuthService:
    service = getattr(request.app.state, "auth", None)
    # An app built without an AuthService (unit tests of other routes) is open, like disabled.
    return service if service is not None else AuthService(None)


def _same_origin(request: Request) -> bool:
    """Defence in depth beside SameSite=Strict: a cookie-borne write must come from our page."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True  # not a browser cross-site request (browsers send Origin on POST)
    return urlsplit(origin).netloc == request.headers.get("host", "")


def authenticate(
    request: Request,
    cookie: Annotated[str | None, Depends(_cookie)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User | None:
    """The caller's user, or None when nobody is logged in (never raises)."""
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    service = auth_service(request)
    if service.users is None:
        return ANONYMOUS_ENGINEER
    user = None
    if bearer is not None and bearer.scheme.lower() == "bearer":
        user = service.users.session_user(bearer.credentials)
    elif cookie:
        user = service.users.session_user(cookie)
        if user is not None and request.method not in ("GET", "HEAD") and not _same_origin(request):
            raise HTTPException(403, "cross-site request refused: use the edge node's own page")
    request.state.user = user
    return user


CurrentUser = Annotated[User | None, Depends(authenticate)]


def _unauthenticated() -> HTTPException:
    return HTTPException(
        401, "log in first: POST /api/login", headers={"WWW-Authenticate": "Bearer"}
    )


def require_role(role: Role | str) -> Callable[..., User]:
    """A dependency giving the logged-in user with at least `role`; 401 or 403 otherwise."""
    needed = Role.parse(role) if isinstance(role, str) else role

    def check(user: CurrentUser) -> User:
        if user is None:
            raise _unauthenticated()
        if not user.may(needed):
            raise HTTPException(
                403, f"{user.name} is a {user.role.label}: this needs the {needed.label} role"
            )
        return user

    check.__name__ = f"require_{needed.label}"
    return check


# async: a check of request state, not worth a thread-pool hop (see edge_node.api._edge)
async def api_guard(request: Request, user: CurrentUser) -> None:
    """App-wide: everything under /api except OPEN_PATHS needs at least a viewer."""
    path = request.url.path
    if path in OPEN_PATHS or not path.startswith("/api/"):
        return
    if user is None:
        raise _unauthenticated()


def open_auth(config: AuthConfig, data_dir: Path) -> AuthService:
    """The edge process's AuthService; says loudly when login is off or nobody can log in."""
    log = get_logger(component="auth")
    if not config.enabled:
        log.warning(
            "auth_disabled",
            detail="auth.enabled is false: anyone reaching the port "
            "can read data and send commands to devices; use only on a bench",
        )
        return AuthService(None, config)
    users = UserStore(config.resolve_path(data_dir))
    if users.count() == 0:
        # A one-time instruction, never a default password: the first engineer is made locally.
        log.warning(
            "no_users",
            detail="nobody can log in yet: on this machine run "
            f"`edge-node user add NAME --role engineer --data-dir {data_dir}`",
        )
    return AuthService(users, config)
