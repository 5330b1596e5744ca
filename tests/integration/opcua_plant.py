"""A small real asyncua Server standing in for a plant's OPC UA server, and certificate helpers."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography.x509.oid import ExtendedKeyUsageOID

NAMESPACE = "urn:factory-edge:test:anodizing"
SERVER_URI = "urn:factory-edge:test:plant-server"


async def make_certificate(folder: Path, name: str, uri: str, server: bool) -> tuple[Path, Path]:
    """A self-signed application certificate (Part 6 §6.2.2 extensions) and its key."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    cert, key = folder / f"{name}.der", folder / f"{name}.pem"
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    await setup_self_signed_certificate(
        key, cert, uri, socket.gethostname(), [usage], {"organizationName": "factory-edge test"}
    )
    return cert, key


class Plant:
    """Bath object with a temperature, a writable setpoint, a failed sensor and a counter."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"opc.tcp://127.0.0.1:{port}/plant/"
        self.server: Server | None = None
        self.namespace = 0

    async def start(
        self, certificate: Path | None = None, key: Path | None = None, trusted: Path | None = None
    ) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        if certificate and key and trusted:
            await server.set_application_uri(SERVER_URI)
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            await server.load_certificate(str(certificate))
            await server.load_private_key(str(key))
            store = TrustStore([trusted], [])
            await store.load()
            options = (
                CertificateValidatorOptions.TRUSTED_VALIDATION
                | CertificateValidatorOptions.PEER_CLIENT
            )
            server.set_certificate_validator(CertificateValidator(options, store))
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.namespace = idx = await server.register_namespace(NAMESPACE)
        bath = await server.nodes.objects.add_object(ua.NodeId("Bath", idx), "Bath")

        async def variable(name: str, value: object, vtype: ua.VariantType) -> None:
            node = await bath.add_variable(
                ua.NodeId(f"Bath.{name}", idx), name, ua.Variant(value, vtype)
            )
            if name == "Setpoint":
                await node.set_writable()

        await variable("Temperature", 20.0, ua.VariantType.Double)
        await variable("Setpoint", 500, ua.VariantType.Int16)
        await variable("Counter", 7, ua.VariantType.UInt32)
        await variable("Conductivity", 1.5, ua.VariantType.Double)
        await variable("Recipe", "R-100", ua.VariantType.String)
        await server.start()
        self.server = server
        await self.set_status("Conductivity", ua.StatusCodes.BadSensorFailure)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def node_id(self, name: str) -> str:
        return f"ns={self.namespace};s=Bath.{name}"

    async def write(self, name: str, value: float, source: dt.datetime | None = None) -> None:
        assert self.server is not None
        node = self.server.get_node(self.node_id(name))
        await node.write_value(
            ua.DataValue(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=source)
        )

    async def set_status(self, name: str, code: int) -> None:
        assert self.server is not None
        node = self.server.get_node(self.node_id(name))
        await node.write_value(ua.DataValue(StatusCode=ua.StatusCode(code)))

    async def read(self, name: str) -> object:
        assert self.server is not None
        return await self.server.get_node(self.node_id(name)).read_value()
