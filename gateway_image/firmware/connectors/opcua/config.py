"""Config model of the OPC UA connector: endpoint, security, and the nodes read per device."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from factory_common.config import StrictModel
from gateway_image.firmware.connectors.tags import Loc, TagBase, check_name, duplicates, raise_at
from gateway_image.firmware.tag_index import TagInfo, device_tag_infos
from hardware.claims import OverNetwork

# OPC UA Part 6 §5.3.1.10 string form: optional namespace index, then one identifier kind.
_NODE_ID: Final = re.compile(
    r"^(?:ns=(?P<ns>\d{1,5});)?(?:i=\d{1,10}|s=.+|g=[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}|b=[A-Za-z0-9+/=]+)$",
    re.DOTALL,
)
_ENDPOINT: Final = re.compile(r"^opc\.tcp://[^/\s:]+(?::\d{1,5})?(?:/\S*)?$")


def check_node_id(value: str) -> str:
    """Check the node id's syntax here so a typo fails at load, not on the shop floor."""
    match = _NODE_ID.match(value.strip())
    if match is None:
        raise ValueError(
            f"node_id {value!r} is not an OPC UA node id: write it as 'ns=<index>;s=<name>', "
            "'ns=<index>;i=<number>', 'ns=<index>;g=<guid>' or 'ns=<index>;b=<base64>' "
            "(copy it from the server's address space in UaExpert)"
        )
    if match.group("ns") is not None and int(match.group("ns")) > 65535:
        raise ValueError(f"node_id {value!r}: namespace index must be 0..65535")
    return value.strip()


class OpcUaSecurity(StrictModel):
    """Message security; Basic256Sha256 needs the gateway's certificate and private key."""

    policy: Literal["None", "Basic256Sha256"] = "None"
    mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    certificate: Path | None = None  # the gateway's application certificate (DER or PEM)
    private_key: Path | None = None  # its private key (PEM or DER)
    private_key_password: SecretStr | None = None
    # Pin the server's certificate; without it the certificate the endpoint offers is used.
    server_certificate: Path | None = None
    # Must equal the URI in the certificate's subjectAltName; default: read from the certificate.
    application_uri: str | None = None

    @model_validator(mode="after")
    def _files(self) -> OpcUaSecurity:
        if self.policy == "None":
            given = [
                k for k in ("certificate", "private_key", "server_certificate") if getattr(self, k)
            ]
            if given:
                raise_at(
                    "OpcUaSecurity",
                    [
                        (
                            (k,),
                            "only used with policy Basic256Sha256: remove it or set the policy",
                            getattr(self, k),
                        )
                        for k in given
                    ],
                )
        else:
            missing = [k for k in ("certificate", "private_key") if getattr(self, k) is None]
            if missing:
                raise_at(
                    "OpcUaSecurity",
                    [
                        (
                            (k,),
                            f"policy {self.policy} needs the gateway's {k.replace('_', ' ')} file",
                            None,
                        )
                        for k in missing
                    ],
                )
        return self


class OpcUaTag(TagBase):
    """One variable node read as one tag."""

    node_id: str
    mode: Literal["subscribe", "poll"] = "subscribe"
    # Seconds; null means "as fast as the subscription publishes".
    sampling_interval: float | None = Field(default=None, ge=0)
    queue_size: int = Field(default=1, ge=1, le=10000)
    # `source`: the device's own timestamp; `server`: when the server last saw the value.
    timestamp: Literal["source", "server"] = "source"

    @field_validator("node_id")
    @classmethod
    def _node_id(cls, value: str) -> str:
        return check_node_id(value)

    @model_validator(mode="after")
    def _poll_has_no_subscription_settings(self) -> OpcUaTag:
        if self.mode == "poll" and self.deadband is not None:
            raise_at(
                "OpcUaTag",
                [
                    (
                        ("deadband",),
                        "deadband is applied by the server to subscribed tags only: "
                        "use mode: subscribe",
                        self.deadband.model_dump(exclude_none=True),
                    )
                ],
            )
        return self


class OpcUaDevice(StrictModel):
    name: str
    tags: list[OpcUaTag] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "device name")

    @model_validator(mode="after")
    def _unique_tags(self) -> OpcUaDevice:
        raise_at(
            "OpcUaDevice",
            duplicates(
                ((t.name, ("tags", i, "name")) for i, t in enumerate(self.tags)), "tag name"
            ),
        )
        return self


class OpcUaConfig(OverNetwork, StrictModel):
    """An OPC UA server; subscribed tags stream, polled tags are read every `poll_interval`."""

    type: Literal["opcua"]
    name: str
    endpoint: str
    security: OpcUaSecurity = OpcUaSecurity()
    username: str | None = None
    # SecretStr: a logged config never shows it.
    password: SecretStr | None = None
    timeout: float = Field(default=4.0, gt=0)  # seconds per request
    publishing_interval: float = Field(default=1.0, gt=0)  # seconds between notifications
    poll_interval: float = Field(default=1.0, gt=0)  # seconds, for mode: poll tags
    # Seconds between liveness probes (each may take this long): a silent server is noticed
    # within about twice this.
    watchdog_interval: float = Field(default=1.0, gt=0)
    devices: list[OpcUaDevice] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "connector name")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not _ENDPOINT.match(value):
            raise ValueError(
                f"endpoint {value!r} is not an OPC UA URL: write opc.tcp://<host>:<port>[/path]"
            )
        return value

    @model_validator(mode="after")
    def _checks(self) -> OpcUaConfig:
        problems = duplicates(
            ((d.name, ("devices", i, "name")) for i, d in enumerate(self.devices)), "device name"
        )
        if (self.username is None) != (self.password is None):
            problems.append(
                (("username",), "give both username and password, or neither", self.username)
            )
        raise_at("OpcUaConfig", problems)
        return self

    def reading_keys(self) -> list[tuple[tuple[str, str], Loc]]:
        """(device, tag) of every Reading this connector produces, with its config location."""
        return [
            ((d.name, t.name), ("devices", i, "tags", j, "name"))
            for i, d in enumerate(self.devices)
            for j, t in enumerate(d.tags)
        ]

    def tag_infos(self) -> list[TagInfo]:
        return device_tag_infos(self.name, self.devices)
