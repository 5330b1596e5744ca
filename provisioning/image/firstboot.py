"""The first-boot files written to a Raspberry Pi OS boot partition (pure: settings in, bytes out).

Both of Raspberry Pi Imager's mechanisms are produced, and which one an image gets follows
from its flavour:
- cloud-init (NoCloud): `user-data`, `network-config`, `meta-data` with a fresh
  `instance-id`, and `ds=nocloud;i=<instance-id>` appended to `cmdline.txt`, so cloud-init
  treats the card as a new instance and applies the files once;
- `firstrun.sh`, started by `systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot
  systemd.unit=kernel-command-line.target` on `cmdline.txt`, which removes itself and that
  entry when done.
Either way the gateway-specific work is one script, `factory/firstboot.sh` (shipped in
gateway_image/os/), so the two mechanisms cannot drift apart.
"""

from __future__ import annotations

import shlex
import uuid

import yaml

from provisioning.image.settings import ImageSettings

PAYLOAD_DIR = "factory"
FIRSTRUN_CMDLINE = (
    " systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot"
    " systemd.unit=kernel-command-line.target"
)
# Where the boot partition is mounted: /boot/firmware from Bookworm on, /boot before.
BOOT_DIRS = ("/boot/firmware", "/boot")


def firstboot_command() -> str:
    """Shell that finds the payload on whichever boot mount this release uses and runs it."""
    candidates = " ".join(f"{d}/{PAYLOAD_DIR}" for d in BOOT_DIRS)
    return (
        f'for d in {candidates}; do if [ -f "$d/firstboot.sh" ]; then '
        'FACTORY_PAYLOAD="$d" bash "$d/firstboot.sh"; break; fi; done'
    )


def user_data(settings: ImageSettings, gateway_id: str) -> bytes:
    """cloud-config: host, clock, the admin user with the fleet's keys only, then firstboot.sh."""
    config: dict[str, object] = {
        "hostname": settings.host(gateway_id),
        "manage_etc_hosts": True,
        "timezone": settings.timezone,
        # A plural users list without "default" creates no default (password) user.
        "users": [
            {
                "name": settings.admin_user,
                "groups": ["sudo", "adm"],
                "shell": "/bin/bash",
                "lock_passwd": True,
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "ssh_authorized_keys": list(settings.ssh_authorized_keys),
            }
        ],
        "ssh_pwauth": False,
        "disable_root": True,
        "runcmd": [["sh", "-c", firstboot_command()]],
    }
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    return ("#cloud-config\n" + body).encode()


def network_config(settings: ImageSettings) -> bytes:
    """Netplan v2: eth0 by DHCP (or its fixed address), plus Wi-Fi when configured."""
    eth0: dict[str, object] = {"dhcp4": True, "optional": True}
    if settings.static is not None:
        eth0 = {"dhcp4": False, "addresses": [settings.static.address]}
        if settings.static.gateway:
            eth0["routes"] = [{"to": "default", "via": settings.static.gateway}]
        if settings.static.dns:
            eth0["nameservers"] = {"addresses": list(settings.static.dns)}
    network: dict[str, object] = {"version": 2, "ethernets": {"eth0": eth0}}
    if settings.wifi is not None:
        wifi = settings.wifi
        point: dict[str, object] = {"password": wifi.password}
        if wifi.hidden:
            point["hidden"] = True
        network["wifis"] = {
            "wlan0": {
                "dhcp4": True,
                "optional": True,
                "regulatory-domain": wifi.country,
                "access-points": {wifi.ssid: point},
            }
        }
    return yaml.safe_dump({"network": network}, sort_keys=False).encode()


def settings_env(settings: ImageSettings, gateway_id: str) -> bytes:
    """`factory/settings.env`, sourced by firstboot.sh: the settings both mechanisms share."""
    values = {
        "GATEWAY_ID": gateway_id,
        "NTP_SERVERS": " ".join(settings.ntp_servers),
        "WATCHDOG": "1" if settings.watchdog else "0",
        "READONLY_ROOT": "1" if settings.readonly_root else "0",
    }
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items()).encode()


def new_instance_id(gateway_id: str) -> str:
    return f"factory-{gateway_id}-{uuid.uuid4().hex[:12]}"


def meta_data(instance_id: str) -> bytes:
    return f"instance-id: {instance_id}\n".encode()


def cmdline_with(cmdline: bytes, addition: str) -> bytes:
    """cmdline.txt is one line: drop an earlier addition of ours, append the new one."""
    line = cmdline.decode().strip().splitlines()[0] if cmdline.strip() else ""
    kept = [
        word
        for word in line.split()
        if not word.startswith(("systemd.run", "systemd.unit=kernel-command-line", "ds=nocloud"))
    ]
    return (" ".join(kept) + addition + "\n").encode()


def without_serial_console(cmdline: bytes) -> bytes:
    """Drop `console=serial0,...`/`console=ttyAMA0,...`: a login prompt must not land on an
    RS-485/RS-232 bus wired to the Pi's UART."""
    words = cmdline.decode().split()
    kept = [
        w for w in words if not w.startswith(("console=serial0", "console=ttyAMA", "console=ttyS"))
    ]
    return (" ".join(kept) + "\n").encode()


def firstrun_script(settings: ImageSettings, gateway_id: str) -> bytes:
    """Imager's systemd mechanism: set what cloud-init would, run firstboot.sh, remove itself."""
    q = shlex.quote
    keys = "\n".join(settings.ssh_authorized_keys)
    user = settings.admin_user
    lines = [
        "#!/bin/sh",
        "# Written by `fleet image build`: runs once, then removes itself and its cmdline entry.",
        "set +e",
        f"echo {q(settings.host(gateway_id))} >/etc/hostname",
        f"sed -i 's/127.0.1.1.*/127.0.1.1\\t{settings.host(gateway_id)}/' /etc/hosts",
        f"ln -sf /usr/share/zoneinfo/{settings.timezone} /etc/localtime",
        f"echo {q(settings.timezone)} >/etc/timezone",
        f"id -u {q(user)} >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo,adm {q(user)}",
        f"passwd -l {q(user)}",
        f"install -d -m 700 -o {q(user)} -g {q(user)} /home/{user}/.ssh",
        f"cat >/home/{user}/.ssh/authorized_keys <<'KEYS'",
        keys,
        "KEYS",
        f"chown {q(user)}:{q(user)} /home/{user}/.ssh/authorized_keys",
        f"chmod 600 /home/{user}/.ssh/authorized_keys",
        f"echo {q(user + ' ALL=(ALL) NOPASSWD:ALL')} >/etc/sudoers.d/010_{user}-nopasswd",
        f"chmod 0440 /etc/sudoers.d/010_{user}-nopasswd",
        "install -d /etc/ssh/sshd_config.d",
        "printf 'PasswordAuthentication no\\nPermitRootLogin no\\n' "
        ">/etc/ssh/sshd_config.d/10-factory.conf",
        "systemctl enable ssh",
        *_wifi_lines(settings),
        firstboot_command(),
        "rm -f /boot/firstrun.sh /boot/firmware/firstrun.sh",
        "sed -i 's| systemd.run.*||g' /boot/cmdline.txt /boot/firmware/cmdline.txt 2>/dev/null",
        "exit 0",
        "",
    ]
    return "\n".join(lines).encode()


def _wifi_lines(settings: ImageSettings) -> list[str]:
    """A NetworkManager profile (Bookworm's network stack) for the configured Wi-Fi."""
    wifi = settings.wifi
    if wifi is None:
        return []
    path = "/etc/NetworkManager/system-connections/factory-wifi.nmconnection"
    profile = [
        "[connection]",
        "id=factory-wifi",
        "type=wifi",
        "autoconnect=true",
        "[wifi]",
        "mode=infrastructure",
        f"ssid={wifi.ssid}",
        f"hidden={'true' if wifi.hidden else 'false'}",
        "[wifi-security]",
        "key-mgmt=wpa-psk",
        f"psk={wifi.password}",
        "[ipv4]",
        "method=auto",
    ]
    return [
        f"cat >{path} <<'WIFI'",
        *profile,
        "WIFI",
        f"chmod 600 {path}",
        f"iw reg set {wifi.country} 2>/dev/null",
        "rfkill unblock wifi 2>/dev/null",
    ]
