"""`fleet release build`: the gateway package and every dependency as wheels, signed, in one file.

Dependencies are resolved from the project's lock when there is one (uv.lock, written by
`make lock`, exported with exact versions and hashes so pip fetches exactly what CI tested;
`--locked` makes a lock older than pyproject.toml fail the build), else from pyproject's core
dependencies plus the gateway extra. Each platform is resolved by pip with
`--only-binary=:all:` for that platform and Python, so a package without a wheel for the Pi
fails the build here, not on the shop floor. Downloads are cached per platform under
releases/.cache and tried offline first, so a rebuild needs no network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from packaging.markers import Marker

from factory_common.errors import FleetError
from gateway_image.agent.artifact import SUFFIX, Manifest, Platform, key_id, write_artifact

# Raspberry Pi OS 12 (bookworm) ships CPython 3.11 and glibc 2.36: every manylinux tag up to
# 2_36 runs there. pip does not expand `manylinux_2_36` to the older tags, so all are listed.
GLIBC_MINORS = range(17, 37)


def _manylinux(machine: str) -> list[str]:
    return [f"manylinux2014_{machine}"] + [f"manylinux_2_{m}_{machine}" for m in GLIBC_MINORS]


PLATFORMS: dict[str, Platform] = {
    "linux_aarch64": Platform("linux_aarch64", "3.11", _manylinux("aarch64"), "aarch64"),
    # The same OS on x86_64: test benches and this kind of build machine.
    "linux_x86_64": Platform("linux_x86_64", "3.11", _manylinux("x86_64"), "x86_64"),
}
DEFAULT_PLATFORMS = ("linux_aarch64", "linux_x86_64")
# Bump when a gateway config written for an older release no longer loads in this one.
CONFIG_SCHEMA = 1
LOCK = "uv.lock"
UV_EXPORT = ["export", "--locked", "--format", "requirements-txt", "--extra", "gateway"]
UV_EXPORT += ["--no-dev", "--no-emit-project", "--no-header"]
# What a checkout holds besides its sources: environments, build output, data, and the
# caches and output of tools and tests, which a test run may be rewriting while it is copied.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", "node_modules",
    ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache", "test-output",
)  # fmt: skip

Progress = Callable[[str], None]


class BuildError(FleetError, RuntimeError):
    """The release could not be built; the message says which step and what pip said."""


@dataclass(frozen=True)
class LockSource:
    label: str  # the lock's path in the repo, or "pyproject.toml[gateway]"
    sha256: str
    requirements: str  # requirements-file text pip resolves each platform from


def lock_source(source: Path) -> LockSource:
    lock = source / LOCK
    if lock.exists():
        digest = hashlib.sha256(lock.read_bytes()).hexdigest()
        return LockSource(LOCK, digest, _uv_export(source))
    pyproject = (source / "pyproject.toml").read_bytes()
    project = tomllib.loads(pyproject.decode())["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["gateway"]]
    return LockSource(
        "pyproject.toml[gateway]", hashlib.sha256(pyproject).hexdigest(), "\n".join(lines) + "\n"
    )


def for_platform(requirements: str, platform: Platform) -> str:
    """Requirements with environment markers decided for the target, not for this machine.

    pip evaluates markers against the interpreter it runs in, even with --platform: a
    `platform_machine == 'aarch64'` dependency (lgpio) would silently be left out of a Pi
    release built on x86_64.
    """
    environment = {
        "platform_machine": platform.machine,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "python_version": platform.python,
        "python_full_version": f"{platform.python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    kept = []
    for line in re.sub(r"\\\n", " ", requirements).splitlines():
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("--") else line
        if not line:
            continue
        requirement, flag, hashes = line.partition(" --hash")
        spec, _, marker = requirement.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        kept.append(" ".join((spec + (f"{flag}{hashes}" if flag else "")).split()))
    return "\n".join(kept) + "\n"


def _uv_export(source: Path) -> str:
    uv = Path(sys.executable).with_name("uv")
    binary = str(uv) if uv.exists() else shutil.which("uv")
    if binary is None:
        raise BuildError(
            f"{source / LOCK} needs uv to export it: pip install uv (in the dev extra)"
        )
    result = subprocess.run([binary, *UV_EXPORT], cwd=source, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"`uv export` of {source / LOCK} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def project_version(source: Path) -> str:
    return str(tomllib.loads((source / "pyproject.toml").read_text())["project"]["version"])


def build_release(
    source: Path,
    releases_dir: Path,
    key: Ed25519PrivateKey,
    *,
    version: str | None = None,
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
    progress: Progress = lambda _step: None,
) -> Path:
    """Build and sign one artifact from the project at `source`; returns its path."""
    unknown = [p for p in platforms if p not in PLATFORMS]
    if unknown:
        raise BuildError(f"unknown platform(s) {unknown}: choose from {sorted(PLATFORMS)}")
    lock = lock_source(source)
    version = version or project_version(source)
    releases_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fleet-release-") as scratch:
        work = Path(scratch)
        progress("building the gateway package wheel")
        wheels = [_project_wheel(source, version, work)]
        for name in platforms:
            progress(f"resolving wheels for {name}")
            requirements = work / f"requirements-{name}.txt"
            requirements.write_text(for_platform(lock.requirements, PLATFORMS[name]))
            cache = releases_dir / ".cache" / name
            wheels += _platform_wheels(PLATFORMS[name], requirements, cache)
        unique = {w.name: w for w in wheels}  # pure-Python wheels serve every platform once
        manifest = Manifest(
            name="factory-edge",
            version=version,
            requirement=f"factory-edge[gateway]=={version}",
            platforms=[PLATFORMS[p] for p in platforms],
            lock={"path": lock.label, "sha256": lock.sha256},
            min_config_schema=CONFIG_SCHEMA,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            key_id=key_id(key.public_key()),
        )
        progress("signing")
        out = releases_dir / f"factory-edge-{version}{SUFFIX}"
        return write_artifact(out, manifest, sorted(unique.values()), key)


def _project_wheel(source: Path, version: str, work: Path) -> Path:
    """Build from a clean copy, with the release's version stamped into pyproject.toml."""
    tree = work / "src"
    shutil.copytree(source, tree, ignore=NOT_SOURCE)
    pyproject = tree / "pyproject.toml"
    text, count = re.subn(
        r'(?m)^version\s*=\s*"[^"]*"', f'version = "{version}"', pyproject.read_text(), count=1
    )
    if count != 1:
        raise BuildError(f'{source / "pyproject.toml"}: no `version = "..."` line to stamp')
    pyproject.write_text(text)
    out = work / "project"
    _pip("wheel", "--no-deps", "--wheel-dir", str(out), str(tree))
    (wheel,) = out.glob("*.whl")
    return wheel


def _platform_wheels(platform: Platform, requirements: Path, cache: Path) -> list[Path]:
    """Wheels for one platform: from the cache offline when it has them all, else the index."""
    cache.mkdir(parents=True, exist_ok=True)
    args = ["download", "--only-binary=:all:", "--dest", str(cache), "-r", str(requirements)]
    args += ["--python-version", platform.python, "--implementation", "cp"]
    for tag in platform.pip_platforms:
        args += ["--platform", tag]
    try:
        output = _pip(*args, "--no-index", "--find-links", str(cache))
    except BuildError:
        output = _pip(*args)
    return _saved_files(output, cache)


def _saved_files(pip_output: str, cache: Path) -> list[Path]:
    """The files pip chose for this resolution (the cache may hold older ones too)."""
    names = re.findall(r"(?m)^\s*(?:Saved|File was already downloaded) (\S+)$", pip_output)
    paths = [cache / Path(n).name for n in names]
    if not paths:
        raise BuildError(f"pip downloaded nothing into {cache}:\n{pip_output[-2000:]}")
    return paths


def _pip(*args: str) -> str:
    command = [sys.executable, "-m", "pip", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"`pip {args[0]}` failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return result.stdout
