"""`fleet image batch`: a commissioning CSV in, per-gateway cards and wiring sheets out.

Real identities (`fleet ca init`'s CA), a real signed release, real base images; one
gateway with a wiring mistake fails alone, and a re-run after fixing it redoes only that one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from fleet.cli import app
from fleet.inventory import init_fleet_dir, load_inventory
from fleet.layout import FleetLayout
from provisioning.ca import init_ca
from provisioning.flash.writer import flash
from provisioning.image.fat import FatPartition
from provisioning.image.mbr import read_partitions
from tests.support.pi_images import make_base_image
from tests.support.releases import Releases

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "batch-ca-passphrase"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkFleetOpsKeyForTestsOnly0000000000000 ops@fleet"
CSV = """gateway_id,serial,site,line,labels
gw-a,SN-1001,plant2,anodizing,zone=A
gw-b,SN-1002,plant2,anodizing,zone=B
gw-c,SN-1003,plant2,packing,
"""
# An active-high output on GPIO4, pulled up from power-on: it would fire at every boot.
MISTAKE = {"type": "gpio", "name": "io", "outputs": [{"name": "lamp", "pin": 4, "driver": "relay"}]}


def fleet_dir(tmp_path: Path, releases: Releases) -> FleetLayout:
    layout = FleetLayout(tmp_path / "fleet")
    init_fleet_dir(layout, "plant2")
    init_ca(layout, PASSPHRASE)
    layout.releases_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(releases.base, layout.releases_dir / releases.base.name)
    layout.release_pub.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(releases.fleet.release_pub, layout.release_pub)
    layout.image_settings.write_text(yaml.safe_dump({"defaults": {"ssh_authorized_keys": [KEY]}}))
    example = yaml.safe_load((ROOT / "examples" / "anodizing-gateway.yaml").read_text())
    layout.configs_dir.mkdir(parents=True, exist_ok=True)
    for gateway in ("gw-a", "gw-b", "gw-c"):
        config = {**example, "gateway": {**example["gateway"], "id": gateway}}
        if gateway == "gw-c":
            config["connectors"] = [*example["connectors"], MISTAKE]
        layout.gateway_config(gateway).write_text(yaml.safe_dump(config, sort_keys=False))
    return layout


def run_batch(layout: FleetLayout, csv: Path, base: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["image", "batch", str(csv), "--base", str(base), "-C", str(layout.root)],
        env={"FLEET_CA_PASSPHRASE": PASSPHRASE, "COLUMNS": "250"},
    )
    return result.exit_code, result.output


def test_batch_makes_cards_and_sheets_and_reruns_only_what_changed(
    tmp_path: Path, releases: Releases
) -> None:
    layout = fleet_dir(tmp_path, releases)
    base = make_base_image(tmp_path / "base.img", "cloud-init", 8, xz=True)
    csv = tmp_path / "gateways.csv"
    csv.write_text(CSV)

    code, output = run_batch(layout, csv, base)
    assert code == 1, output
    assert "1 of 3 gateway(s) failed" in output and "GPIO4" in output
    for gateway in ("gw-a", "gw-b"):
        folder = layout.images_dir / gateway
        record = json.loads((folder / "card" / "flash-set.json").read_text())
        assert record["flavour"] == "Raspberry Pi OS (cloud-init)"
        assert "factory/gateway.key" in record["files"] and "user-data" in record["files"]
        assert (folder / "wiring" / f"{gateway}.html").exists()
    inventory = load_inventory(layout)
    assert inventory.get("gw-a").labels == {"zone": "A", "serial": "SN-1001"}
    assert not (layout.images_dir / "gw-c" / "card").exists()

    # The engineer fixes gw-c; the same command now does gw-c alone.
    config = yaml.safe_load(layout.gateway_config("gw-c").read_text())
    config["connectors"] = config["connectors"][:-1]
    layout.gateway_config("gw-c").write_text(yaml.safe_dump(config, sort_keys=False))
    before = (layout.images_dir / "gw-a" / "card" / "meta-data").read_bytes()
    code, output = run_batch(layout, csv, base)
    assert code == 0, output
    assert output.count("nothing (up to date)") == 2
    assert (layout.images_dir / "gw-a" / "card" / "meta-data").read_bytes() == before
    assert (layout.images_dir / "gw-c" / "card" / "flash-set.json").exists()

    # A technician flashes a card from the base image and gw-c's set.
    card = tmp_path / "card.img"
    flash(base, card, flash_set=layout.images_dir / "gw-c" / "card")
    with card.open("rb") as image:
        boot = FatPartition(card, read_partitions(image.read(512))[0].start)
    assert boot.read("factory/settings.env").startswith(b"GATEWAY_ID=gw-c\n")
    assert b"ds=nocloud;i=factory-gw-c-" in boot.read("cmdline.txt")
