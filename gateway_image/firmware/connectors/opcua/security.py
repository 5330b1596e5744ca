"""OPC UA session security: the client certificate and key, and the pinned server certificate."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies, uacrypto
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway_image.firmware.connectors.base import ConnectorError
from gateway_image.firmware.connectors.opcua import diagnose
from gateway_image.firmware.connectors.opcua.config import OpcUaConfig, OpcUaSecurity


def _der(content: bytes) -> bytes:
    """A certificate in DER, whether it was stored as DER or PEM."""
    try:
        return x509.load_der_x509_certificate(content).public_bytes(serialization.Encoding.DER)
    except ValueError:
        return x509.load_pem_x509_certificate(content).public_bytes(serialization.Encoding.DER)


def application_uri(certificate_der_or_pem: bytes) -> str | None:
    """The URI in the certificate's subjectAltName: a client must present it (Part 6 §6.2.2)."""
    try:
        cert = x509.load_der_x509_certificate(certificate_der_or_pem)
    except ValueError:
        cert = x509.load_pem_x509_certificate(certificate_der_or_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def _properties(content: bytes, password: str | None = None) -> uacrypto.CertProperties:
    """asyncua needs to be told whether bytes are PEM or DER."""
    kind = "pem" if content.lstrip().startswith(b"-----BEGIN") else "der"
    return uacrypto.CertProperties(content, kind, password)


async def pinned_mismatch(config: OpcUaConfig) -> bool:
    """Whether the server presents another certificate than the pinned server_certificate."""
    pinned_path = config.security.server_certificate
    try:
        pinned = await asyncio.to_thread(Path(str(pinned_path)).read_bytes)
    except OSError:
        return False
    presented = None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(config.timeout):
            presented = await diagnose.presented_certificate(config.endpoint)
    if presented is None:
        return False
    return _der(pinned) != _der(presented)


async def secure(client: Client, security: OpcUaSecurity, name: str) -> None:
    """Sign and encrypt the session as `security` says (Basic256Sha256), or leave it open."""
    if security.policy == "None":
        return
    files = {"certificate": security.certificate, "private_key": security.private_key}
    if security.server_certificate is not None:
        files["server_certificate"] = security.server_certificate
    content: dict[str, bytes] = {}
    for key, path in files.items():
        try:
            content[key] = await asyncio.to_thread(Path(str(path)).read_bytes)
        except OSError as exc:
            raise ConnectorError(
                f"cannot read security.{key} {path}: {exc.strerror or exc}; check the path "
                "and that the gateway user may read it"
            ) from None
    try:
        uri = security.application_uri or application_uri(content["certificate"]) or ""
    except ValueError:
        raise ConnectorError(
            f"security.certificate {security.certificate} is not a DER or PEM certificate"
        ) from None
    client.application_uri = uri
    password = security.private_key_password
    server = content.get("server_certificate")
    try:
        await client.set_security(
            security_policies.SecurityPolicyBasic256Sha256,
            certificate=_properties(content["certificate"]),
            private_key=_properties(
                content["private_key"], password.get_secret_value() if password else None
            ),
            server_certificate=_properties(server) if server is not None else None,
            mode=getattr(ua.MessageSecurityMode, security.mode),
        )
    except (ValueError, TypeError) as exc:  # cryptography: bad key, wrong password, bad PEM
        raise ConnectorError(
            f"cannot load the certificate or private key of {name}: {exc}; check "
            "security.private_key and security.private_key_password"
        ) from None
