"""Login and logout: a session cookie for the web page, a bearer token for API clients."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from edge_node.auth import COOKIE, AuthService, CurrentUser, auth_service
from factory_common.logs import get_logger

router = APIRouter(prefix="/api", tags=["auth"])
Auth = Annotated[AuthService, Depends(auth_service)]
log = get_logger(component="auth")
VERIFY_WAIT_S = 5.0


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    # browser: an HttpOnly cookie, nothing readable by scripts; api: a bearer token in the body
    client: Literal["browser", "api"] = "browser"


class LoginResult(BaseModel):
    user: str
    role: Literal["viewer", "operator", "engineer"]
    expires_at: int  # epoch seconds
    token: str | None = None  # only for client=api


class WhoAmI(BaseModel):
    auth_enabled: bool
    users_exist: bool
    user: str | None = None
    role: Literal["viewer", "operator", "engineer"] | None = None


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login", response_model=LoginResult)
def login(body: LoginRequest, request: Request, response: Response, auth: Auth) -> LoginResult:
    """Check the password (argon2, so this is a def: it runs in the thread pool, off the loop)."""
    if auth.users is None:
        raise HTTPException(409, "authentication is disabled on this edge node (auth.enabled)")
    ip = _client_ip(request)
    wait = auth.limiter.retry_after(body.username, ip)
    if wait > 0:
        log.warning("login_throttled", user=body.username, ip=ip)
        raise HTTPException(
            429,
            "too many failed logins: wait and try again",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    if auth.users.count() == 0:
        raise HTTPException(
            503,
            "no users yet: on the edge node run `edge-node user add NAME --role engineer`",
        )
    if not auth.verifying.acquire(timeout=VERIFY_WAIT_S):
        raise HTTPException(503, "too many logins at once: try again", headers={"Retry-After": "2"})
    try:
        user = auth.users.verify(body.username, body.password)
    finally:
        auth.verifying.release()
    if user is None:
        auth.limiter.failed(body.username, ip)
        log.warning("login_failed", user=body.username, ip=ip)
        raise HTTPException(401, "wrong user name or password")
    auth.limiter.succeeded(body.username)
    token, expires = auth.users.open_session(user, auth.session_ttl(body.client), body.client)
    log.info("login", user=user.name, role=user.role.label, ip=ip, client=body.client)
    if body.client == "api":
        return LoginResult(user=user.name, role=user.role.label, expires_at=expires, token=token)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(auth.session_ttl("browser")),
        httponly=True,  # scripts (and so injected scripts) cannot read the session
        samesite="strict",  # other sites cannot make the browser send it
        secure=request.url.scheme == "https",
        path="/",
    )
    return LoginResult(user=user.name, role=user.role.label, expires_at=expires)


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response, auth: Auth) -> None:
    """Ends the session of the cookie or bearer token sent, if any."""
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    if token and auth.users is not None and auth.users.close_session(token):
        log.info("logout", ip=_client_ip(request))
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


@router.get("/auth", response_model=WhoAmI)
def whoami(user: CurrentUser, auth: Auth) -> WhoAmI:
    """Who is logged in (open: the page asks before it shows the login form)."""
    users_exist = auth.users.count() > 0 if auth.users is not None else True
    role = user.role.label if user else None
    return WhoAmI(
        auth_enabled=auth.enabled, users_exist=users_exist, user=user and user.name, role=role
    )
