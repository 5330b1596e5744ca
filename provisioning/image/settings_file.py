"""`image.yaml` in a fleet directory: first-boot settings for all gateways, and overrides.

```yaml
defaults:                      # every gateway's card
  timezone: Europe/Berlin
  ntp_servers: [10.20.0.1]
  ssh_authorized_keys: ["ssh-ed25519 AAAA... ops@plant2"]
  wifi: {ssid: plant-floor, password: "...", country: DE}
gateways:                      # only what differs for one gateway
  gw-07:
    static: {address: 10.20.3.17/24, gateway: 10.20.3.1, dns: [10.20.0.1]}
```
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from factory_common.config import ConfigError, StrictModel, load_yaml_model
from provisioning.image.settings import ImageSettings, StaticAddress, WifiSettings


class PartialSettings(StrictModel):
    hostname: str | None = None
    timezone: str | None = None
    ntp_servers: list[str] | None = None
    admin_user: str | None = None
    ssh_authorized_keys: list[str] | None = None
    wifi: WifiSettings | None = None
    static: StaticAddress | None = None
    watchdog: bool | None = None
    readonly_root: bool | None = None
    data_partition_mib: int | None = None


class ImageFile(StrictModel):
    defaults: PartialSettings = PartialSettings()
    gateways: dict[str, PartialSettings] = {}


def settings_for(path: Path, gateway_id: str) -> ImageSettings:
    """The merged settings of one gateway; errors name the file and what is missing."""
    if not path.exists():
        raise ConfigError(
            str(path),
            [
                f"{path}: no such file: it holds the SSH keys and network settings every card "
                "gets (see docs/provisioning.md)"
            ],
        )
    file = load_yaml_model(path, ImageFile)
    merged = file.defaults.model_dump(exclude_none=True)
    override = file.gateways.get(gateway_id)
    if override is not None:
        merged.update(override.model_dump(exclude_none=True))
    try:
        return ImageSettings.model_validate(merged)
    except ValidationError as exc:
        problems = [
            f"{path}: {gateway_id}: {'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError(str(path), problems) from None
