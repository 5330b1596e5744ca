"""The operators' web page: the dashboard for logged-in users, the login form for the rest."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from edge_node.auth import CurrentUser

WEB_DIR = Path(__file__).parent.parent / "web"
router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/index.html")
def dashboard(user: CurrentUser) -> Response:
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-store"})


@router.get("/login")
def login_page() -> Response:
    return FileResponse(WEB_DIR / "login.html", headers={"Cache-Control": "no-store"})


def mount_web(app: FastAPI) -> None:
    """The page routes, then the static files (scripts, styles, uPlot: no data in them)."""
    app.include_router(router)
    app.mount("/", StaticFiles(directory=WEB_DIR), name="web")
