"""What a gateway's card sets up on first boot besides the software: host, clock, access, network.

Validated with the project's one config loader, so an error names the file, line and key.
"""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from factory_common.config import StrictModel

HOSTNAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-\S+) \S+( .*)?$")


class WifiSettings(StrictModel):
    ssid: Annotated[str, Field(min_length=1, max_length=32)]
    # WPA2-PSK passphrases are 8 to 63 printable ASCII characters (IEEE 802.11i, H.4.1).
    password: Annotated[str, Field(min_length=8, max_length=63)]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    hidden: bool = False


class StaticAddress(StrictModel):
    """A fixed address on eth0 instead of DHCP (factory networks often hand out none)."""

    address: str
    gateway: str | None = None
    dns: list[str] = []

    @field_validator("address")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            ipaddress.ip_interface(value)
        except ValueError:
            raise ValueError("expected an address with its prefix, e.g. 10.20.0.17/24") from None
        if "/" not in value:
            raise ValueError("expected an address with its prefix, e.g. 10.20.0.17/24")
        return value

    @field_validator("gateway")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)
        return value


class ImageSettings(StrictModel):
    hostname: str | None = None  # default: the gateway id
    timezone: str = "UTC"
    ntp_servers: list[str] = []
    admin_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] = "factory"
    ssh_authorized_keys: Annotated[list[str], Field(min_length=1)]
    wifi: WifiSettings | None = None
    static: StaticAddress | None = None
    watchdog: bool = True
    readonly_root: bool = False
    data_partition_mib: Annotated[int, Field(ge=0, le=1 << 20)] = 0

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is not None and not HOSTNAME.match(value):
            raise ValueError(
                "a hostname is 1-63 of a-z, 0-9 and '-', not starting or ending in '-'"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value not in zoneinfo.available_timezones():
            raise ValueError("not an IANA time zone name (e.g. Europe/Berlin, Asia/Seoul)")
        return value

    @field_validator("ssh_authorized_keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not SSH_KEY.match(key.strip()):
                raise ValueError(f"not an OpenSSH public key line: {key[:40]!r}")
        return [key.strip() for key in keys]

    @model_validator(mode="after")
    def _readonly_needs_data(self) -> ImageSettings:
        if self.readonly_root and not self.data_partition_mib:
            raise ValueError(
                "readonly_root needs data_partition_mib > 0: the gateway's buffer must live "
                "on a writable partition"
            )
        return self

    def host(self, gateway_id: str) -> str:
        return self.hostname or gateway_id.lower()
