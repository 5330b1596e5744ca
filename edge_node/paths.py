"""Normalise request paths once, before routing and the login check: one path, one meaning.

Without it `/./index.html`, `//index.html` and `/index.html/` skipped the dashboard's login
redirect (the router matched none of them) and fell through to the static files, which
normalise on their own and served the page.
"""

from __future__ import annotations

import posixpath

from starlette.types import ASGIApp, Receive, Scope, Send


def normalise(path: str) -> str:
    """'//a/./b/../c/' -> '/a/c': no empty, '.' or '..' segments, no trailing slash."""
    clean = posixpath.normpath("/" + path.lstrip("/"))
    # POSIX keeps a leading '//' as implementation-defined: never for a URL path.
    return "/" + clean.lstrip("/")


class NormalisePaths:
    """Pure ASGI middleware: rewrites scope['path'] so every later layer sees the same path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path = normalise(scope["path"])
            if path != scope["path"]:
                scope = dict(scope, path=path, raw_path=path.encode())
        await self.app(scope, receive, send)
