"""The release artifact's verifier: signed, whole, listed, by a trusted key, not a downgrade."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway_image.agent.artifact import (
    ArtifactError,
    Manifest,
    Platform,
    check_not_downgrade,
    key_id,
    read_manifest,
    verify_and_extract,
    write_artifact,
)

KEY = Ed25519PrivateKey.generate()


def manifest(version: str = "1.2.0") -> Manifest:
    return Manifest(
        name="factory-edge",
        version=version,
        requirement=f"factory-edge[gateway]=={version}",
        platforms=[Platform("linux_aarch64", "3.11", ["manylinux2014_aarch64"])],
        lock={"path": "uv.lock", "sha256": "0" * 64},
        min_config_schema=1,
        created_at="2026-12-07T00:00:00+00:00",
        key_id=key_id(KEY.public_key()),
    )


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    wheels = []
    for name in ("factory_edge-1.2.0-py3-none-any.whl", "dep-1.0-py3-none-any.whl"):
        wheel = tmp_path / name
        wheel.write_bytes(name.encode() * 100)
        wheels.append(wheel)
    return write_artifact(tmp_path / "release.tar", manifest(), wheels, KEY)


def rewrite(artifact: Path, change: dict[str, bytes | None]) -> Path:
    """A copy with members replaced (bytes), removed (None) or added (new names)."""
    out = artifact.with_name("changed.tar")
    with tarfile.open(artifact) as source, tarfile.open(out, "w") as target:
        members = {m.name: source.extractfile(m).read() for m in source.getmembers()}  # type: ignore[union-attr]
        for name, data in {**members, **change}.items():
            if data is None:
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))
    return out


def test_a_signed_artifact_extracts_every_wheel(artifact: Path, tmp_path: Path) -> None:
    got = verify_and_extract(artifact, [KEY.public_key()], tmp_path / "out")
    assert got.version == "1.2.0" and got.platforms[0].name == "linux_aarch64"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == got.wheel_names


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"wheels/dep-1.0-py3-none-any.whl": b"x" * 2400}, "does not match its signed sha256"),
        ({"wheels/dep-1.0-py3-none-any.whl": b"short"}, "signed as"),
        ({"wheels/dep-1.0-py3-none-any.whl": None}, "missing wheels/dep-1.0"),
        ({"wheels/evil-1.0-py3-none-any.whl": b"evil"}, "not listed in the signed"),
        ({"manifest.sig": None}, "unsigned"),
        ({"manifest.json": manifest("9.9.9").to_bytes()}, "not signed by a trusted release key"),
    ],
)
def test_anything_changed_is_refused_and_nothing_is_left(
    artifact: Path, tmp_path: Path, change: dict[str, bytes | None], message: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ArtifactError, match=message):
        verify_and_extract(rewrite(artifact, change), [KEY.public_key()], out)
    assert not out.exists() or not any(out.iterdir())


def test_another_fleets_key_is_refused(artifact: Path) -> None:
    stranger = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(ArtifactError, match=key_id(stranger)):
        read_manifest(artifact, [stranger])
    with pytest.raises(ArtifactError, match="no trusted release key"):
        read_manifest(artifact, [])


def test_not_an_artifact_says_so(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ArtifactError, match="not a release artifact"):
        read_manifest(junk, [KEY.public_key()])


def test_a_downgrade_needs_saying_so() -> None:
    older = manifest("1.1.0")
    with pytest.raises(ArtifactError, match="downgrade"):
        check_not_downgrade(older, "1.2.0", downgrade=False)
    check_not_downgrade(older, "1.2.0", downgrade=True)
    check_not_downgrade(manifest("1.10.0"), "1.9.0", downgrade=False)  # versions, not strings
    check_not_downgrade(older, "0+unknown", downgrade=False)
