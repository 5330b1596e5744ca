"""Skip when a binary is missing on a newcomer's machine; in CI a missing binary is a failure."""

from __future__ import annotations

import os
import shutil

import pytest


def require_binary(name: str, how: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    if path:
        return path
    message = f"{name} is not installed: {how}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
