"""`fleet release keygen|build|list|show`: signed gateway release artifacts in releases/."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleet import release_keys
from fleet.cli.common import Exit, FleetDir, JsonFlag, err, fail, layout_of
from fleet.layout import FleetLayout
from fleet.release_build import DEFAULT_PLATFORMS, PLATFORMS, BuildError, build_release
from gateway_image.agent.artifact import (
    SUFFIX,
    ArtifactError,
    Manifest,
    load_public_keys,
    read_manifest,
)

app = typer.Typer(help="Build, sign and inspect gateway releases.", no_args_is_help=True)
console = Console()

PassFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help=f"Release key passphrase (else ${release_keys.PASSPHRASE_ENV}, else asked).",
    ),
]


def _passphrase(file: Path | None, confirm: bool = False) -> str:
    if file is not None:
        return file.read_text().strip()
    if os.environ.get(release_keys.PASSPHRASE_ENV):
        return os.environ[release_keys.PASSPHRASE_ENV]
    return str(typer.prompt("Release key passphrase", hide_input=True, confirmation_prompt=confirm))


@app.command()
def keygen(fleet_dir: FleetDir = None, passphrase_file: PassFile = None) -> None:
    """Make the fleet's Ed25519 release key (keys/release.key, encrypted; keys/release.pub)."""
    layout = layout_of(fleet_dir)
    try:
        ident = release_keys.generate(layout, _passphrase(passphrase_file, confirm=True))
    except release_keys.ReleaseKeyError as exc:
        fail(str(exc), Exit.REFUSED)
    console.print(f"release key {ident} written; gateways trust {layout.release_pub}")


@app.command()
def build(
    fleet_dir: FleetDir = None,
    source: Annotated[Path, typer.Option(help="The factory-edge checkout to build.")] = Path("."),
    version: Annotated[
        str | None, typer.Option(help="Release version (default: pyproject's).")
    ] = None,
    platform: Annotated[
        list[str], typer.Option(help=f"Target platforms: {', '.join(PLATFORMS)}.")
    ] = list(DEFAULT_PLATFORMS),  # noqa: B006
    passphrase_file: PassFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Pack the gateway and every dependency as wheels per platform, signed, into releases/."""
    layout = layout_of(fleet_dir)
    try:
        if not layout.release_key.exists():
            console.print("no release key yet: making one (keep its passphrase safe)")
            release_keys.generate(layout, _passphrase(passphrase_file, confirm=True))
        key = release_keys.load(layout, _passphrase(passphrase_file))
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("starting", total=None)
            path = build_release(
                source,
                layout.releases_dir,
                key,
                version=version,
                platforms=platform,
                progress=lambda step: progress.update(task, description=step),
            )
    except release_keys.ReleaseKeyError as exc:
        fail(str(exc), Exit.INPUT)
    except (BuildError, OSError) as exc:
        fail(str(exc), Exit.FAILED)
    manifest = read_manifest(path, [key.public_key()])
    if as_json:
        typer.echo(json.dumps({"path": str(path), **_summary(manifest, path)}))
    else:
        console.print(f"built {path} ({len(manifest.files)} wheels, {_size(path)})")


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


def _summary(manifest: Manifest, path: Path) -> dict[str, object]:
    return {
        "version": manifest.version,
        "platforms": [p.name for p in manifest.platforms],
        "created_at": manifest.created_at,
        "key_id": manifest.key_id,
        "lock": manifest.lock,
        "min_config_schema": manifest.min_config_schema,
        "wheels": len(manifest.files),
        "bytes": path.stat().st_size,
    }


def _load_all(layout: FleetLayout) -> list[tuple[Path, Manifest | ArtifactError]]:
    keys = load_public_keys([layout.release_pub]) if layout.release_pub.exists() else []
    found: list[tuple[Path, Manifest | ArtifactError]] = []
    for path in sorted(layout.releases_dir.glob(f"*{SUFFIX}")):
        try:
            found.append((path, read_manifest(path, keys)))
        except ArtifactError as exc:
            found.append((path, exc))
    return found


@app.command("list")
def list_(fleet_dir: FleetDir = None, as_json: JsonFlag = False) -> None:
    """Every artifact in releases/, checked against the fleet's release key."""
    found = _load_all(layout_of(fleet_dir))
    if as_json:
        rows = [
            {"path": str(p), **_summary(m, p)}
            if isinstance(m, Manifest)
            else {"path": str(p), "error": str(m)}
            for p, m in found
        ]
        typer.echo(json.dumps(rows))
        return
    table = Table("version", "platforms", "created", "key", "size", "file")
    for path, manifest in found:
        if isinstance(manifest, ArtifactError):
            table.add_row("[red]INVALID[/]", str(manifest), "", "", _size(path), path.name)
            continue
        platforms = ", ".join(p.name for p in manifest.platforms)
        table.add_row(
            manifest.version,
            platforms,
            manifest.created_at,
            manifest.key_id,
            _size(path),
            path.name,
        )
    console.print(table)
    if any(isinstance(m, ArtifactError) for _, m in found):
        raise typer.Exit(int(Exit.FAILED))


@app.command()
def show(version: str, fleet_dir: FleetDir = None, as_json: JsonFlag = False) -> None:
    """One release's manifest: platforms, lock, config schema, every wheel and its sha256."""
    found: list[tuple[Path, Manifest]] = [
        (p, m)
        for p, m in _load_all(layout_of(fleet_dir))
        if isinstance(m, Manifest) and m.version == version
    ]
    if not found:
        fail(f"no valid release {version} in releases/: see `fleet release list`")
    path, manifest = found[0]
    if as_json:
        files = {n: {"sha256": e.sha256, "size": e.size} for n, e in manifest.files.items()}
        typer.echo(json.dumps({"path": str(path), **_summary(manifest, path), "files": files}))
        return
    console.print(f"[bold]{manifest.name} {manifest.version}[/]  signed by {manifest.key_id}")
    console.print(f"lock: {manifest.lock['path']} ({manifest.lock['sha256'][:12]})")
    console.print(f"minimum config schema: {manifest.min_config_schema}")
    for platform in manifest.platforms:
        console.print(f"platform {platform.name}: CPython {platform.python}")
    table = Table("wheel", "sha256", "bytes")
    for name, entry in sorted(manifest.files.items()):
        table.add_row(name.removeprefix("wheels/"), entry.sha256[:16], str(entry.size))
    console.print(table)
