"""Broker settings every MQTT client in the product shares: address, login and TLS.

The gateway uplink, the gateway's MQTT-in connector, the edge's ingest and its command sender
all connect to a broker the same way; their configs extend `BrokerConfig` with what is theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator

from factory_common.config import StrictModel


class TlsConfig(StrictModel):
    ca: Path | None = None  # CA bundle that signed the broker's certificate; default: system CAs
    cert: Path | None = None  # client certificate (the shipped broker config requires one)
    key: Path | None = None
    insecure_hostname: bool = False  # skip the hostname check (broker reached by IP)

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("give both `cert` and `key` for a client certificate, or neither")
        return self


class BrokerConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    keepalive: int = Field(default=30, ge=5, le=65535)
    username: str | None = None
    # SecretStr: its repr is '**********', so a logged config never shows the password.
    password: SecretStr | None = None
    tls: TlsConfig | None = None


def apply_login_and_tls(client: Any, broker: BrokerConfig) -> None:
    """Set a paho client's credentials and TLS from the config (certificates are verified)."""
    if broker.username is not None:
        password = broker.password.get_secret_value() if broker.password else None
        client.username_pw_set(broker.username, password)
    if broker.tls is not None:
        tls = broker.tls
        client.tls_set(
            ca_certs=str(tls.ca) if tls.ca else None,
            certfile=str(tls.cert) if tls.cert else None,
            keyfile=str(tls.key) if tls.key else None,
        )
        client.tls_insecure_set(tls.insecure_hostname)
