"""Finding a release artifact by version in releases/."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.layout import FleetLayout
from fleet.rollout.targets import TargetError, release_artifact, resolve


def test_the_artifact_of_a_version_and_only_that_one(tmp_path: Path) -> None:
    layout = FleetLayout(tmp_path)
    layout.releases_dir.mkdir()
    for name in ("factory-edge-1.2.release.tar", "factory-edge-1.2.10.release.tar", "notes.txt"):
        (layout.releases_dir / name).write_bytes(b"x")
    assert release_artifact(layout, "1.2") == layout.releases_dir / "factory-edge-1.2.release.tar"
    assert release_artifact(layout, "1.2.1") is None
    target = resolve(layout, "release", "1.2.10")
    assert target.path is not None and target.sha256 and target.value == "1.2.10"
    with pytest.raises(TargetError, match="build it with `fleet release build`"):
        resolve(layout, "release", "3.0", require_file=True)
