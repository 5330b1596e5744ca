"""`fleet image build|flash|batch`: per-gateway SD cards from a published base image."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from factory_common.config import ConfigError
from fleet.cli import image_batch
from fleet.cli.common import Exit, FleetDir, layout_of
from fleet.cli.progress import byte_bars, byte_progress
from provisioning.flash.devices import RefusedDevice, check, describe, lsblk
from provisioning.flash.writer import FlashError, flash
from provisioning.image.boot_set import SetError
from provisioning.image.build import build
from provisioning.image.customise import CustomiseError, GatewayPayload
from provisioning.image.fat import FatError
from provisioning.image.flavour import UnknownImageError
from provisioning.image.mbr import PartitionTableError
from provisioning.image.payload import PayloadError, gateway_payload
from provisioning.image.sink import VerifyError
from provisioning.image.source import SourceError, open_source

app = typer.Typer(help="Build and flash gateway SD-card images.", no_args_is_help=True)
console = Console(stderr=True)
app.command("batch")(image_batch.batch)

# Problems the operator can fix; each message says how (exit 2, like every fleet input error).
EXPECTED = (
    ConfigError,
    CustomiseError,
    FatError,
    PartitionTableError,
    PayloadError,
    SourceError,
    UnknownImageError,
)


def _fail(exc: Exception, code: Exit = Exit.INPUT) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(int(code))


def _payload(
    fleet_dir: Path | None, gateway: str | None, release: Path | None, balena: Path | None
) -> GatewayPayload | None:
    if gateway is None:
        return None
    payload = gateway_payload(layout_of(fleet_dir), gateway, release)
    if balena is not None:
        try:
            payload.balena_config = json.loads(balena.read_text())
        except (OSError, ValueError) as exc:
            raise PayloadError(f"{balena}: not a readable config.json: {exc}") from None
    return payload


def _source_size(base: Path) -> int | None:
    with open_source(base) as source:
        return source.size


@app.command("build")
def build_command(
    base: Annotated[Path, typer.Option("--base", help="Raspberry Pi OS or balenaOS .img/.img.xz")],
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway id (inventory entry).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Image file to write (sparse).")],
    fleet_dir: FleetDir = None,
    release: Annotated[
        Path | None, typer.Option(help="Release artifact (default: newest).")
    ] = None,
    balena_config: Annotated[Path | None, typer.Option(help="config.json for balenaOS.")] = None,
) -> None:
    """Write OUT: BASE with GATEWAY's identity, config, first-boot setup and release."""
    try:
        payload = _payload(fleet_dir, gateway, release, balena_config)
        with byte_progress(console, f"building {out.name}", _source_size(base)) as advance:
            result = build(base, out, payload, advance)
    except EXPECTED as exc:
        raise _fail(exc) from None
    console.print(
        f"[green]built[/green] {out} ({result.flavour.value}, {result.length / 1e9:.2f} GB, "
        f"sha256 {result.sha256[:16]}…); flash it with: fleet image flash {out} DEVICE"
    )


@app.command("flash")
def flash_command(
    image: Annotated[Path, typer.Argument(help="Image (.img or .img.xz) to write.")],
    device: Annotated[Path, typer.Argument(help="The card's whole device, e.g. /dev/sdb.")],
    gateway: Annotated[
        str | None, typer.Option(help="Customise a base image for this gateway while writing.")
    ] = None,
    flash_set: Annotated[
        Path | None, typer.Option("--set", help="A flash set from `fleet image batch`.")
    ] = None,
    fleet_dir: FleetDir = None,
    release: Annotated[
        Path | None, typer.Option(help="Release artifact (default: newest).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before writing.")] = False,
    force: Annotated[
        bool, typer.Option(help="Allow a device the kernel does not call removable.")
    ] = False,
) -> None:
    """Write IMAGE to DEVICE, then read it back and compare; refuses system and mounted disks."""
    try:
        size = _source_size(image)
        if device.is_block_device():
            card = describe(lsblk(str(device)))
            check(card, size or 0, force=force)
            console.print(f"about to ERASE {card.describe()}")
            if not yes and not typer.confirm("write the image to it?", err=True):
                raise typer.Exit(1)
        if gateway and flash_set:
            raise PayloadError("give --gateway or --set, not both")
        payload = _payload(fleet_dir, gateway, release, None)
        bars = [("writing", size), ("verifying", size)]
        with byte_bars(console, bars) as (advance_write, advance_verify):
            flash(image, device, payload, advance_write, advance_verify, flash_set=flash_set)
    except RefusedDevice as exc:
        raise _fail(exc, Exit.REFUSED) from None
    except (FlashError, VerifyError) as exc:
        raise _fail(exc, Exit.FAILED) from None
    except (*EXPECTED, SetError) as exc:
        raise _fail(exc) from None
    os.sync()
    console.print(f"[green]written and verified[/green] {device}: remove the card and label it")
