"""API routers beyond the data API (auth, commands, web page), wired into the app in one place."""

from __future__ import annotations

from fastapi import FastAPI

from edge_node.auth import AuthService
from edge_node.metrics import install_metrics
from edge_node.routes import auth, commands, limits, web


def install(app: FastAPI, auth_service: AuthService | None) -> None:
    """Login, commands and /metrics; `auth_service` None leaves the API open (unit tests)."""
    app.state.auth = auth_service
    app.include_router(auth.router)
    app.include_router(commands.router)
    app.include_router(limits.router)
    install_metrics(app)


mount_web = web.mount_web
