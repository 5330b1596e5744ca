"""Where each thing lives in a fleet directory (a folder an operations team keeps in git).

```
FLEET_DIR/
  fleet.yaml              broker, CA, backends, defaults, state URL
  image.yaml              what every SD card sets up on first boot (SSH keys, time, network)
  gateways/<id>.yaml      one inventory entry per gateway
  configs/<id>.yaml       each gateway's gateway config (validated with the gateway's models)
  pki/                    ca.crt, ca.key (passphrase-encrypted), crl.pem, gateways/<id>.{crt,key}
  keys/                   release.key (passphrase-encrypted), release.pub
  releases/               release artifacts, one file each
  images/                 built SD images and per-gateway flash sets
  state.db                rollouts, per-gateway steps and the audit log (SQLite by default)
```
Secrets (`pki/ca.key`, `keys/release.key`, `pki/gateways/*.key`) are listed in the
`.gitignore` that `fleet init` writes, so a team can commit the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

GITIGNORE = "\n".join(
    ["pki/ca.key", "pki/gateways/*.key", "keys/release.key", "images/", "state.db*", ""]
)


@dataclass(frozen=True)
class FleetLayout:
    """Paths inside one fleet directory; nothing here touches the disk."""

    root: Path

    @property
    def fleet_file(self) -> Path:
        return self.root / "fleet.yaml"

    @property
    def image_settings(self) -> Path:
        return self.root / "image.yaml"

    @property
    def gateways_dir(self) -> Path:
        return self.root / "gateways"

    def gateway_file(self, gateway_id: str) -> Path:
        return self.gateways_dir / f"{gateway_id}.yaml"

    @property
    def configs_dir(self) -> Path:
        return self.root / "configs"

    def gateway_config(self, gateway_id: str) -> Path:
        return self.configs_dir / f"{gateway_id}.yaml"

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def ca_cert(self) -> Path:
        return self.pki_dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.pki_dir / "ca.key"

    @property
    def crl(self) -> Path:
        return self.pki_dir / "crl.pem"

    def gateway_cert(self, gateway_id: str) -> Path:
        return self.pki_dir / "gateways" / f"{gateway_id}.crt"

    def gateway_key(self, gateway_id: str) -> Path:
        return self.pki_dir / "gateways" / f"{gateway_id}.key"

    @property
    def release_key(self) -> Path:
        return self.root / "keys" / "release.key"

    @property
    def release_pub(self) -> Path:
        return self.root / "keys" / "release.pub"

    @property
    def releases_dir(self) -> Path:
        return self.root / "releases"

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"
