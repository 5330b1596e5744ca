"""OPC UA security failures against node-opcua, a server this project did not write.

Each failure a technician meets on commissioning day must come back as its cause, the
certificate file concerned and the step to take on the server: an untrusted client
certificate (node-opcua files it under rejected/, as most servers do), a security mode the
endpoint does not offer, a pinned server certificate that is not the one presented, and an
expired gateway certificate.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_image.firmware.connectors.base import ConnectorError
from gateway_image.firmware.connectors.opcua.config import OpcUaConfig
from gateway_image.firmware.connectors.opcua.connector import OpcUaConnector, build
from tests.support.opcua_certs import application_certificate
from tests.support.ports import free_port
from tests.support.requirements import require_binary

SERVER_DIR = Path(__file__).resolve().parents[1] / "opcua_server"


class NodeServer:
    """node-opcua on a free loopback port with its own PKI folder."""

    def __init__(self, pki: Path, mode: str = "SignAndEncrypt") -> None:
        self.pki, self.mode = pki, mode
        self.port = free_port()
        self.url = f"opc.tcp://127.0.0.1:{self.port}/plant"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> NodeServer:
        node = require_binary("node", "install Node.js (Debian: apt-get install nodejs npm)")
        if not (SERVER_DIR / "node_modules" / "node-opcua-server").is_dir():
            message = (
                f"node-opcua is not installed: run ./scripts/bootstrap.sh (npm ci in {SERVER_DIR})"
            )
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        self.process = subprocess.Popen(
            [node, "server.js", str(self.port), str(self.pki), self.mode],
            cwd=SERVER_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:  # the server prints "ready URL" once listening
            if line.startswith("ready "):
                return self
        raise RuntimeError(f"node-opcua exited with {self.process.wait()} before it was ready")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def trust(self, certificate: Path) -> None:
        """What a technician does on the server: move the certificate from rejected to trusted
        (node-opcua keeps refusing one that is still in rejected)."""
        for rejected in (self.pki / "rejected").glob(f"{certificate.stem}*"):
            rejected.unlink()
        folder = self.pki / "trusted" / "certs"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(certificate, folder / certificate.name)

    @property
    def certificate(self) -> Path:
        return self.pki / "own" / "certs" / "certificate.pem"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[NodeServer]]:
    started: list[NodeServer] = []
    yield started
    for server in started:
        server.stop()


def start(servers: list[NodeServer], pki: Path, mode: str = "SignAndEncrypt") -> NodeServer:
    server = NodeServer(pki, mode)
    servers.append(server)
    return server.start()


def connector_for(server: NodeServer, cert: Path, key: Path, **security: str) -> OpcUaConnector:
    config = OpcUaConfig.model_validate(
        {
            "type": "opcua",
            "name": "oven",
            "endpoint": server.url,
            "timeout": 3.0,
            "devices": [{"name": "oven", "tags": [{"name": "t", "node_id": "ns=1;s=Temperature"}]}],
            "security": {
                "policy": "Basic256Sha256",
                "mode": "SignAndEncrypt",
                "certificate": str(cert),
                "private_key": str(key),
                **security,
            },
        }
    )
    return build(config)


async def refusal(connector: OpcUaConnector) -> str:
    with pytest.raises(ConnectorError) as refused:
        await connector.probe()
    return str(refused.value)


async def test_untrusted_certificate_says_where_to_trust_it(
    tmp_path: Path, servers: list[NodeServer]
) -> None:
    cert, key = application_certificate(tmp_path / "gw", "gw1", "urn:factory-edge:gateway:gw1")
    server = start(servers, tmp_path / "pki")
    message = await refusal(connector_for(server, cert, key))
    assert message.startswith("security handshake refused: cannot connect to " + server.url)
    assert str(cert) in message and "from the rejected certificates to the trusted" in message
    assert list((tmp_path / "pki" / "rejected").glob("gw1*")), "the server filed it as rejected"

    server.stop()  # the technician trusts it; node-opcua reads its trust list at start
    server.trust(cert)
    server = start(servers, tmp_path / "pki")
    readings = await connector_for(server, cert, key).probe()
    assert [(r.tag, r.value) for r in readings] == [("t", 21.5)]


async def test_a_mode_the_endpoint_does_not_offer(
    tmp_path: Path, servers: list[NodeServer]
) -> None:
    cert, key = application_certificate(tmp_path / "gw", "gw1", "urn:factory-edge:gateway:gw1")
    server = start(servers, tmp_path / "pki", mode="Sign")
    message = await refusal(connector_for(server, cert, key))
    assert message.startswith("security policy or mode rejected: ")
    assert "set security.policy and security.mode" in message


async def test_a_pinned_server_certificate_that_is_not_presented(
    tmp_path: Path, servers: list[NodeServer]
) -> None:
    cert, key = application_certificate(tmp_path / "gw", "gw1", "urn:factory-edge:gateway:gw1")
    other, _ = application_certificate(tmp_path / "old-server", "old", "urn:old-server")
    server = NodeServer(tmp_path / "pki")
    server.trust(cert)
    server = start(servers, tmp_path / "pki")
    message = await refusal(connector_for(server, cert, key, server_certificate=str(other)))
    assert message.startswith("server certificate does not match the pinned one: ")
    assert "security.server_certificate" in message

    pinned = await connector_for(
        server, cert, key, server_certificate=str(server.certificate)
    ).probe()
    assert pinned[0].value == 21.5  # the right pin connects


async def test_an_expired_gateway_certificate(tmp_path: Path, servers: list[NodeServer]) -> None:
    cert, key = application_certificate(
        tmp_path / "gw", "gw1", "urn:factory-edge:gateway:gw1", valid_days=(-400, -2)
    )
    NodeServer(tmp_path / "pki").trust(cert)
    server = start(servers, tmp_path / "pki")
    message = await refusal(connector_for(server, cert, key))
    assert message.startswith("certificate expired or not yet valid: ")
    assert "the gateway's certificate is expired on" in message and str(cert) in message
