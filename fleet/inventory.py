"""The inventory: `fleet.yaml` and one `gateways/<id>.yaml` per gateway, loaded into typed models.

Every file is validated with the same loader the gateway uses (factory_common.config), so an
error names the file, the line and the key path. Writes go through a temporary file and a
rename, so a crash never leaves a half-written entry in a directory a team keeps in git.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator

from factory_common.config import ConfigError, StrictModel, load_yaml_model
from factory_common.mqtt_settings import BrokerConfig
from factory_common.wire import WireError, check_id
from fleet.layout import GITIGNORE, FleetLayout
from fleet.selectors import Selector
from hardware.profiles import known_boards

BackendName = Literal["ssh", "balena", "mqtt"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Window(StrictModel):
    """A maintenance window, UTC: updates may start only inside one (when any are given)."""

    days: list[Day] = Field(default_factory=lambda: list(DAYS))
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # "22:00"
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # may be before start: past midnight


class RolloutDefaults(StrictModel):
    canary: str = "1"  # a count ("2") or a percent ("5%")
    max_parallel: int = Field(default=10, ge=1)
    wave_size: str = "25%"
    error_threshold: str = "0"  # failures per wave tolerated: count or percent
    gate_timeout_s: float = Field(default=600.0, gt=0)
    pause_s: float = Field(default=0.0, ge=0)
    windows: list[Window] = []
    # A healthy gateway's buffer is at most this deep once it has caught up.
    drained_depth: int = Field(default=1000, ge=0)


class SshSettings(StrictModel):
    user: str = "factory"
    key: Path | None = None  # private key the fleet logs in with; relative to the fleet dir
    connect_timeout_s: float = Field(default=10.0, gt=0)
    command_timeout_s: float = Field(default=300.0, gt=0)
    max_parallel: int = Field(default=10, ge=1)
    incoming_dir: str = "/var/lib/factory-gateway/incoming"  # uploaded release artifacts
    # The update agent's root: requests are dropped into its `requests/` folder, as its own
    # CLI does, but with the fleet's request id (so a repeat is answered, not redone).
    agent_root: str = "/opt/factory-gateway"
    logs_command: str = "journalctl -u factory-gateway --no-pager -n {lines}"
    follow_command: str = "journalctl -u factory-gateway --no-pager -f -n {lines}"


class BalenaSettings(StrictModel):
    fleet: str  # the balena fleet (application) slug, e.g. myorg/anodizing
    api_key_env: str = "BALENA_API_KEY"
    data_directory: Path | None = None  # where balena-sdk keeps balena.cfg and its token


class MqttSettings(StrictModel):
    # Where an agent asked over MQTT fetches a release: a URL with {file} (an HTTP server the
    # fleet's releases/ are published on), or else a path on the gateway where the artifact
    # was staged beforehand ({file} in the SSH backend's incoming_dir).
    artifact_url: str = ""


class Backends(StrictModel):
    ssh: SshSettings = SshSettings()
    mqtt: MqttSettings = MqttSettings()
    balena: BalenaSettings | None = None


class Enrollment(StrictModel):
    # Accept an announcing gateway whose certificate the fleet CA signed, without an operator.
    auto_accept: bool = False
    default_backend: BackendName = "ssh"


class FleetConfig(StrictModel):
    name: str = "fleet"
    broker: BrokerConfig = BrokerConfig()
    state_url: str | None = None  # SQLAlchemy URL; default sqlite:///<fleet dir>/state.db
    backends: Backends = Backends()
    defaults: RolloutDefaults = RolloutDefaults()
    enrollment: Enrollment = Enrollment()


class GatewayEntry(StrictModel):
    id: str
    site: str = ""
    line: str = ""
    board: str | None = None
    backend: BackendName = "ssh"
    address: str = ""  # host or host:port for ssh; the balena device UUID for balena
    host_key: str | None = None  # "ssh-ed25519 AAAA...": checked, never learned on first use
    labels: dict[str, str] = {}
    desired_release: str | None = None
    current_release: str | None = None
    config_hash: str | None = None  # sha256 of the config last pushed and found healthy

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        try:
            return check_id(value)
        except WireError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("board")
    @classmethod
    def _board(cls, value: str | None) -> str | None:
        if value is not None and value not in known_boards():
            raise ValueError(f"unknown board {value!r}; known: {', '.join(known_boards())}")
        return value

    def selector_labels(self) -> dict[str, str]:
        """Labels plus built-in fields, which selectors may name like labels."""
        builtin = {"id": self.id, "site": self.site, "line": self.line, "backend": self.backend}
        if self.board:
            builtin["board"] = self.board
        return {**self.labels, **{k: v for k, v in builtin.items() if v}}


@dataclass(frozen=True)
class Inventory:
    layout: FleetLayout
    config: FleetConfig
    gateways: dict[str, GatewayEntry]

    def select(self, selector: Selector) -> list[GatewayEntry]:
        """Matching gateways, sorted by id so waves are reproducible."""
        return [
            g for _, g in sorted(self.gateways.items()) if selector.matches(g.selector_labels())
        ]

    def get(self, gateway_id: str) -> GatewayEntry:
        try:
            return self.gateways[gateway_id]
        except KeyError:
            raise KeyError(
                f"no gateway {gateway_id!r} in {self.layout.gateways_dir}: see `fleet devices list`"
            ) from None


def load_fleet_config(layout: FleetLayout) -> FleetConfig:
    if not layout.fleet_file.exists():
        raise ConfigError(
            str(layout.fleet_file),
            [f"{layout.fleet_file}: no fleet.yaml; run `fleet init {layout.root}` first"],
        )
    return load_yaml_model(layout.fleet_file, FleetConfig)


def load_gateway_entry(path: Path) -> GatewayEntry:
    entry = load_yaml_model(path, GatewayEntry)
    if entry.id != path.stem:
        raise ConfigError(str(path), [f"{path}:1: id: {entry.id!r} must match the file name"])
    return entry


def load_inventory(layout: FleetLayout) -> Inventory:
    """Load fleet.yaml and every gateway entry; all problems in all files raise one ConfigError."""
    config = load_fleet_config(layout)
    gateways: dict[str, GatewayEntry] = {}
    problems: list[str] = []
    for path in sorted(layout.gateways_dir.glob("*.yaml")):
        try:
            entry = load_gateway_entry(path)
        except ConfigError as exc:
            problems += exc.problems
            continue
        gateways[entry.id] = entry
    if problems:
        raise ConfigError(str(layout.gateways_dir), problems)
    return Inventory(layout, config, gateways)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_gateway_entry(layout: FleetLayout, entry: GatewayEntry) -> Path:
    path = layout.gateway_file(entry.id)
    data = entry.model_dump(mode="json", exclude_defaults=True)
    data = {"id": entry.id, **data}
    _atomic_write(path, yaml.safe_dump(data, sort_keys=False))
    return path


def init_fleet_dir(layout: FleetLayout, name: str) -> None:
    """Create an empty fleet directory: fleet.yaml, gateways/, configs/ and a .gitignore."""
    layout.gateways_dir.mkdir(parents=True, exist_ok=True)
    layout.configs_dir.mkdir(parents=True, exist_ok=True)
    layout.releases_dir.mkdir(parents=True, exist_ok=True)
    if not layout.fleet_file.exists():
        _atomic_write(layout.fleet_file, yaml.safe_dump({"name": name}, sort_keys=False))
    gitignore = layout.root / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(GITIGNORE)
