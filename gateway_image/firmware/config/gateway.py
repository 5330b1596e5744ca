"""The whole gateway config: identity, MQTT uplink, durable buffer and the connector list."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, Union

from pydantic import Field, field_validator, model_validator

from factory_common.config import StrictModel, load_yaml_model, parse_yaml_model
from factory_common.mqtt_settings import BrokerConfig
from gateway_image.firmware.connectors.gpio.config import GpioConfig
from gateway_image.firmware.connectors.modbus.config import ModbusRtuConfig, ModbusTcpConfig
from gateway_image.firmware.connectors.mqtt_in.config import MqttInConfig
from gateway_image.firmware.connectors.opcua.config import OpcUaConfig
from gateway_image.firmware.connectors.serial_line.config import SerialLineConfig
from gateway_image.firmware.connectors.tags import Loc, check_name, duplicates, raise_at
from hardware.wiring_checks import wiring_problems

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(value: object) -> int:
    """256MiB -> 268435456, '1GB' -> 10**9, 4096 -> 4096 (KiB/MiB binary, kB/MB decimal)."""
    if isinstance(value, bool):
        raise ValueError("expected a size in bytes such as 268435456 or '256MiB'")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"cannot read size {value!r}: write bytes or e.g. '256MiB', '1GB'")
    number, unit = float(match[1]), match[2].lower()
    prefix = unit[:1] if unit[:1] != "b" else ""
    if "i" in unit and prefix:
        return int(number * 1024 ** ("kmgt".index(prefix) + 1))
    return int(number * _UNITS[prefix])


class GatewayInfo(StrictModel):
    id: str
    site: str = ""
    # The board and HATs mounted (hardware/boards/): without a board the wiring checks use
    # the strictest profile, and `gateway wiring` refuses to draw a sheet.
    board: str | None = None
    hats: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_name(value, "gateway id")


class MqttConfig(BrokerConfig):
    """The uplink's broker, and how it batches and paces what it sends."""

    batch_max_readings: int = Field(default=500, ge=1, le=100_000)
    batch_max_delay: float = Field(default=0.2, ge=0)
    inflight_batches: int = Field(default=8, ge=1, le=1000)
    status_interval: float = Field(default=10.0, gt=0)
    # "5" (default): a PUBACK carries a reason code, so a publish the broker refuses (e.g. by
    # ACL) keeps its readings buffered. "3.1.1" (e.g. the embedded amqtt broker): a refused
    # publish cannot be detected and its readings are deleted as if delivered.
    protocol: Literal["5", "3.1.1"] = "5"
    # When buffered readings may be deleted: "edge" (default) once the edge's receipt lists
    # them, end to end, so a broker losing what it acknowledged loses nothing; "broker" on the
    # broker's PUBACK, for a consumer that sends no receipts (docs/reliability.md).
    confirm: Literal["edge", "broker"] = "edge"
    # Live data before backlog (docs/reliability.md): after an outage or restart leaving more
    # than `backlog` unsent readings, current readings go first and the backlog is replayed
    # behind them at `replay_rate` readings/s; "auto" is 20x the measured production rate,
    # at least `replay_min_rate`.
    live_first: bool = True
    backlog: int = Field(default=2000, ge=0)
    replay_rate: float | Literal["auto"] = "auto"
    replay_min_rate: float = Field(default=2000.0, gt=0)

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol(cls, value: object) -> object:
        # `protocol: 5` in YAML is an int; the version names are strings.
        return str(value) if type(value) is int else value

    @field_validator("replay_rate")
    @classmethod
    def _rate(cls, value: float | str) -> float | str:
        if not isinstance(value, str) and value <= 0:
            raise ValueError("replay_rate must be > 0 readings/s, or 'auto'")
        return value


class BufferConfig(StrictModel):
    path: Path = Path("buffer.sqlite")
    max_bytes: int = Field(default=256 * 1024**2, gt=0)
    policy: Literal["drop_oldest", "refuse_newest"] = "drop_oldest"
    ttl: float | None = Field(default=None, gt=0)
    sync_interval: float = Field(default=0.1, ge=0)
    # Readings waiting for the next group commit; beyond it the policy applies (queue_full).
    queue_max: int = Field(default=50_000, ge=1)

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _size(cls, value: object) -> int:
        return parse_size(value)

    def resolve_path(self, data_dir: Path) -> Path:
        """Relative buffer paths live under the --data-dir of `gateway run`."""
        return self.path if self.path.is_absolute() else data_dir / self.path


# One line per connector type: owners add their model here (discriminated on `type`).
ConnectorConfig = Annotated[
    Union[  # noqa: UP007 - a one-member Union keeps the list open for the other connectors
        ModbusTcpConfig,
        OpcUaConfig,
        MqttInConfig,
        ModbusRtuConfig,
        SerialLineConfig,
        GpioConfig,
    ],
    Field(discriminator="type"),
]


class _HasReadingKeys(Protocol):
    def reading_keys(self) -> list[tuple[tuple[str, str], Loc]]: ...


class GatewayConfig(StrictModel):
    gateway: GatewayInfo
    mqtt: MqttConfig = MqttConfig()
    buffer: BufferConfig = BufferConfig()
    connectors: list[ConnectorConfig] = []

    @model_validator(mode="after")
    def _unique(self) -> GatewayConfig:
        problems = duplicates(
            ((c.name, ("connectors", i, "name")) for i, c in enumerate(self.connectors)),
            "connector name",
        )
        keys: list[tuple[Any, Loc]] = []
        for i, connector in enumerate(self.connectors):
            # Connector configs with tags implement reading_keys(); the rest produce none.
            if hasattr(connector, "reading_keys"):
                own: _HasReadingKeys = connector
                keys += [(key, ("connectors", i, *loc)) for key, loc in own.reading_keys()]
        problems += duplicates(keys, "(device, tag)")
        raise_at("GatewayConfig", problems)
        return self

    @model_validator(mode="after")
    def _wiring(self) -> GatewayConfig:
        # Board pins, shared GPIOs, boot states, serial buses: hardware/wiring_checks.py reads
        # only what each connector claims, so it needs nothing from this module.
        problems = wiring_problems(self.gateway.board, self.gateway.hats, self.connectors)
        raise_at("GatewayConfig", [(p.loc, p.message, p.value) for p in problems])
        return self

    def connector(self, name: str) -> ConnectorConfig:
        for connector in self.connectors:
            if connector.name == name:
                return connector
        raise KeyError(f"no connector named {name!r} in gateway {self.gateway.id}")


def load_gateway_config(path: str | Path) -> GatewayConfig:
    """Read and validate one gateway YAML file; raises factory_common.config.ConfigError."""
    return load_yaml_model(path, GatewayConfig)


def parse_gateway_config(text: str, source: str = "<config>") -> GatewayConfig:
    return parse_yaml_model(text, GatewayConfig, source)
