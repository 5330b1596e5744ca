"""The project wheel, built once per test session and shared by the packaging tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from fleet.release_build import NOT_SOURCE

ROOT = Path(__file__).resolve().parents[2]


def build_wheel(out: Path) -> Path:
    """`pip wheel --no-deps .` into `out`: what the Dockerfile's builder stage makes. From a
    copy of the sources: pip builds in the tree it is given (build/, *.egg-info), and other
    test workers read this checkout meanwhile."""
    tree = out / "src"
    shutil.copytree(ROOT, tree, ignore=NOT_SOURCE)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(out), "."],
        cwd=tree,
        check=True,
        capture_output=True,
        timeout=300,
    )
    shutil.rmtree(tree)
    (path,) = out.glob("factory_edge-*.whl")
    return path
