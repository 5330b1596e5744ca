"""Find what a rollout delivers: a release artifact by version, or a pushed config by hash."""

from __future__ import annotations

from pathlib import Path

from factory_common.errors import FleetError
from fleet.backends.base import Target
from fleet.layout import FleetLayout

# The artifact format owns its file suffix (`fleet release build` writes factory-edge-<v><suffix>).
from gateway_image.agent.artifact import SUFFIX as ARTIFACT_SUFFIX
from gateway_image.agent.artifact import sha256_file


class TargetError(FleetError, LookupError):
    """The release or config named is not in the fleet directory."""


def config_history(layout: FleetLayout) -> Path:
    """Every config ever pushed, stored by content hash, so a revert can find the last good one."""
    return layout.configs_dir / "history"


def release_artifact(layout: FleetLayout, version: str) -> Path | None:
    """The artifact file for `version` in releases/ (named <anything>-<version><suffix>)."""
    if not layout.releases_dir.exists():
        return None
    for path in sorted(layout.releases_dir.glob(f"*{ARTIFACT_SUFFIX}")):
        stem = path.name.removesuffix(ARTIFACT_SUFFIX)
        if path.is_file() and (stem == version or stem.endswith(f"-{version}")):
            return path
    return None


def history_file(layout: FleetLayout, gateway: str, value: str) -> Path:
    """One gateway's rendering of a config (its own gateway.id) whose template hash is `value`."""
    return config_history(layout) / f"{gateway}-{value}.yaml"


def resolve(
    layout: FleetLayout, kind: str, value: str, gateway: str = "", require_file: bool = False
) -> Target:
    if kind == "config":
        path = history_file(layout, gateway, value)
        if not path.exists():
            raise TargetError(f"no config {value[:12]} for {gateway} in {config_history(layout)}")
        return Target("config", value, path, sha256_file(path))
    artifact = release_artifact(layout, value)
    if artifact is None:
        if require_file:
            raise TargetError(
                f"no release {value} in {layout.releases_dir}: build it with `fleet release build`"
            )
        return Target("release", value)
    return Target("release", value, artifact, sha256_file(artifact))
