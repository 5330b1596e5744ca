"""The edge node's config: identity, the MQTT broker it ingests from, its store and HTTP API."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from edge_node.alarms.config import MonitoringConfig
from edge_node.cloud.config import CloudConfig
from edge_node.rules.config import RulesConfig
from edge_node.store.retention import RetentionConfig
from factory_common.config import StrictModel, load_yaml_model, parse_yaml_model
from factory_common.mqtt_settings import BrokerConfig
from factory_common.wire import WireError, check_id


class EdgeInfo(StrictModel):
    id: str
    site: str = ""
    # The plant's time zone (IANA name): the UI shows and picks times in it, whatever the
    # browser's own zone (a remote engineer, a control-room PC set to UTC).
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name like Asia/Seoul"
            ) from None
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        try:
            return check_id(value, "edge id")
        except WireError as exc:
            raise ValueError(str(exc)) from None


class MqttConfig(BrokerConfig):
    # Fixed, not random: with a persistent session the broker queues QoS 1 messages for this
    # id while the edge is down and delivers them when it comes back. Default: edge-<id>.
    # Against the shipped broker it must be the certificate's Common Name: the broker admits a
    # certificate only under `<CN>` (this session) or `<CN>:<suffix>` (the command senders).
    client_id: str | None = None
    reconnect_min: float = Field(default=0.5, gt=0)
    reconnect_max: float = Field(default=30.0, gt=0)


class StoreConfig(StrictModel):
    path: Path = Path("edge.sqlite")
    # Ingest groups messages into one transaction per interval: one fsync, then PUBACKs.
    flush_interval: float = Field(default=0.2, gt=0, le=1.0)
    # Flush early at this many unacknowledged messages: the broker stops sending QoS 1
    # messages past its in-flight window (Mosquitto: max_inflight_messages, default 20).
    flush_messages: int = Field(default=16, ge=1)
    compact_interval: float = Field(default=60.0, gt=0)
    # Hours stay in `recent` this long after they end, so a short backlog lands before packing.
    compact_grace: float = Field(default=300.0, ge=0)
    # How long raw readings, minute and hour rollups are kept (edge_node/store/retention.py).
    retention: RetentionConfig = RetentionConfig()

    def resolve_path(self, data_dir: Path) -> Path:
        """Relative store paths live under the --data-dir of `edge-node run`."""
        return self.path if self.path.is_absolute() else data_dir / self.path


class HttpConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)  # 0: pick a free port (tests)
    # Reverse proxies (IP addresses) whose X-Forwarded-For / -Proto headers are believed.
    # Empty (default): none, so a client cannot pick the address the login throttle counts.
    trusted_proxies: list[str] = []


class AuthConfig(StrictModel):
    """Login for the API and web page (edge_node/auth); users live in their own SQLite file."""

    # Off only for a bench or lab: then everyone is an engineer. The edge warns at start.
    enabled: bool = True
    path: Path = Path("users.sqlite")  # relative to --data-dir
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)  # browser sessions
    token_days: float = Field(default=30.0, gt=0, le=366)  # bearer tokens for API clients
    # Failed logins allowed per user (and 4x per client address) within the window.
    max_failures: int = Field(default=5, ge=1)
    failure_window_s: float = Field(default=300.0, gt=0)

    def resolve_path(self, data_dir: Path) -> Path:
        return self.path if self.path.is_absolute() else data_dir / self.path


class EdgeConfig(StrictModel):
    edge: EdgeInfo
    mqtt: MqttConfig = MqttConfig()
    store: StoreConfig = StoreConfig()
    http: HttpConfig = HttpConfig()
    auth: AuthConfig = AuthConfig()
    cloud: CloudConfig | None = None  # central MariaDB/MySQL: master data down, data up
    monitoring: MonitoringConfig = MonitoringConfig()  # SPC alarms, rule firings, commands
    rules: RulesConfig | None = None  # the rules file (edge_node/rules), hot-reloaded

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"edge-{self.edge.id}"


def load_edge_config(path: str | Path) -> EdgeConfig:
    """Raises factory_common.config.ConfigError naming file:line: key.path for each problem."""
    return load_yaml_model(path, EdgeConfig)


def parse_edge_config(text: str, source: str = "<edge config>") -> EdgeConfig:
    return parse_yaml_model(text, EdgeConfig, source)
