"""`fleet release build`'s artifact: complete for the Pi's platform, and listed by the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway_image.agent.artifact import verify_and_extract
from tests.support.processes import console_script
from tests.support.releases import ROOT, Releases, unsigned_copy

pytestmark = pytest.mark.slow


def test_the_artifact_alone_resolves_the_gateway_for_linux_aarch64(
    releases: Releases, tmp_path: Path
) -> None:
    # The builder resolved these from the registry with --only-binary for aarch64; here pip
    # resolves the whole gateway again from the artifact's wheels alone, as a Pi would.
    wheels = tmp_path / "wheels"
    manifest = verify_and_extract(releases.base, [releases.key.public_key()], wheels)
    assert [p.name for p in manifest.platforms] == ["linux_aarch64", "linux_x86_64"]
    assert any(
        "aarch64" in name and name.startswith("cryptography") for name in manifest.wheel_names
    )
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--isolated",
            "install",
            "--dry-run",
            "--no-index",
            "--ignore-installed",
            "--target",  # pip asks for one with --platform, even for a dry run
            str(tmp_path / "target"),
            "--find-links",
            str(wheels),
            "--only-binary=:all:",
            "--platform",
            "manylinux2014_aarch64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--report",
            str(report),
            manifest.requirement,
        ],
        capture_output=True,
        text=True,
        env={**env, "PIP_CONFIG_FILE": os.devnull},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    chosen = {
        Path(i["download_info"]["url"]).name for i in json.loads(report.read_text())["install"]
    }
    assert any(name.startswith("pydantic_core") and "aarch64" in name for name in chosen)
    assert not any("x86_64" in name for name in chosen)


def test_release_list_and_show(releases: Releases, tmp_path: Path) -> None:
    fleet_dir = str(releases.fleet.root)

    def fleet(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            console_script("fleet", "release", *args, "--fleet-dir", fleet_dir),
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = fleet("list", "--json")
    assert listed.returncode == 0, listed.stderr
    versions = {row["version"] for row in json.loads(listed.stdout)}
    assert {"1.0.0", "1.1.0", "1.2.0"} <= versions
    shown = json.loads(fleet("show", "1.0.0", "--json").stdout)
    assert shown["platforms"] == ["linux_aarch64", "linux_x86_64"]
    lock = "uv.lock" if (ROOT / "uv.lock").exists() else "pyproject.toml[gateway]"
    assert shown["lock"]["path"] == lock
    assert fleet("show", "9.9.9").returncode == 2  # bad input: no such release
    # An unsigned file in releases/ is listed as invalid and the listing fails.
    bad = unsigned_copy(releases.good, releases.fleet.releases_dir / "bad-1.1.0.release.tar")
    try:
        broken = fleet("list")
        assert broken.returncode == 1 and "INVALID" in broken.stdout
    finally:
        bad.unlink()
