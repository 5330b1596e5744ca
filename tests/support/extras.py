"""Clean virtualenvs holding one extra, installed from uv.lock as the Dockerfile does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).parent / "uv")
EXPORT = ("--format", "requirements-txt", "--extra")
PIP = (UV, "pip", "install", "--quiet", "--python")

# Per extra: the packages (and modules left out) that tier must import with only that extra.
# line_sim's orchestrator and logins drive the gateway and edge tiers (`factory-line run`
# needs `.[gateway,edge,sim]`); the rest of line_sim is the simulator and broker.
TIERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "gateway": (("factory_common", "gateway_image", "hardware"), ()),
    "edge": (("factory_common", "edge_node"), ()),
    "fleet": (("factory_common", "fleet", "provisioning"), ()),
    "sim": (("factory_common", "line_sim"), ("line_sim.orchestrator", "line_sim.logins")),
}


def locked_requirements(extra: str, out: Path) -> Path:
    """The hashed requirements of one extra, exported from uv.lock (fails on a stale lock)."""
    target = out / f"{extra}.txt"
    subprocess.run(
        [
            UV,
            "export",
            "--quiet",
            "--locked",
            "--no-emit-project",
            *EXPORT,
            extra,
            "-o",
            str(target),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def install_extra(extra: str, wheel: Path, where: Path) -> Path:
    """A fresh venv with the locked packages of `extra` and the wheel (no other deps)."""
    venv = where / f"venv-{extra}"
    requirements = locked_requirements(extra, where)
    python = str(venv / "bin" / "python")
    steps = [
        [UV, "venv", "--quiet", "--python", sys.executable, str(venv)],
        [*PIP, python, "--require-hashes", "-r", str(requirements)],
        [*PIP, python, "--no-deps", str(wheel)],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{' '.join(step)}\n{done.stdout}{done.stderr}"
    return venv


# Imports every module of the given packages (but the skipped ones) and prints those that
# fail, with the error: in a venv holding one extra, a failure is an import outside it.
IMPORT_ALL = """
import importlib, pkgutil, sys
packages, skip = sys.argv[1].split(","), set(filter(None, sys.argv[2].split(",")))
failed = []
for name in packages:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        if info.name in skip or info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
"""


def import_failures(venv: Path, extra: str) -> list[str]:
    packages, skip = TIERS[extra]
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", IMPORT_ALL, ",".join(packages), ",".join(skip)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=venv,  # not the checkout: the venv must not import the source tree
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]
