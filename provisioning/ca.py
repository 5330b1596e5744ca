"""The fleet's certificate authority: its key never leaves the operator's machine, encrypted.

Every MQTT identity (gateway, broker, edge node, fleet) is an ECDSA P-256 certificate signed
by this CA; the broker trusts only it and reads the CRL it publishes (`crlfile`). The CRL is
re-signed with each revocation and is valid for CRL_DAYS: an expired CRL makes Mosquitto
refuse every client, so `fleet status` warns before that (see expiry.py).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from factory_common.errors import FleetError
from fleet.layout import FleetLayout

CA_DAYS = 3650
CRL_DAYS = 365
MIN_PASSPHRASE = 8


class CaError(FleetError, ValueError):
    """The CA is missing, already there, or its passphrase is wrong."""


@dataclass(frozen=True)
class Ca:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def write_private(path: Path, key: ec.EllipticCurvePrivateKey, passphrase: str | None) -> None:
    """A private key readable by its owner only; encrypted when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def init_ca(layout: FleetLayout, passphrase: str, name: str = "factory-edge-fleet-ca") -> Ca:
    if layout.ca_key.exists():
        raise CaError(f"{layout.ca_key} exists: this fleet already has a CA")
    if len(passphrase) < MIN_PASSPHRASE:
        raise CaError(f"the CA passphrase needs at least {MIN_PASSPHRASE} characters")
    key = ec.generate_private_key(ec.SECP256R1())
    start = now() - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    write_private(layout.ca_key, key, passphrase)
    write_cert(layout.ca_cert, cert)
    ca = Ca(cert, key)
    write_crl(layout, ca, [])
    return ca


def load_ca(layout: FleetLayout, passphrase: str) -> Ca:
    try:
        cert = x509.load_pem_x509_certificate(layout.ca_cert.read_bytes())
        data = layout.ca_key.read_bytes()
    except FileNotFoundError:
        raise CaError(f"no CA in {layout.pki_dir}: run `fleet ca init` first") from None
    try:
        key = serialization.load_pem_private_key(data, passphrase.encode())
    except (ValueError, TypeError):
        raise CaError(f"cannot decrypt {layout.ca_key}: wrong passphrase") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CaError(f"{layout.ca_key} is not an EC key")
    return Ca(cert, key)


def issue(
    ca: Ca,
    common_name: str,
    days: int,
    *,
    server_names: list[str] | None = None,
    not_before: dt.datetime | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate: client auth with CN = identity, or server auth with these names."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or now() - dt.timedelta(minutes=5)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in server_names]), critical=False
        )
    return builder.sign(ca.key, hashes.SHA256()), key


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def read_crl(layout: FleetLayout) -> list[x509.RevokedCertificate]:
    if not layout.crl.exists():
        return []
    return list(x509.load_pem_x509_crl(layout.crl.read_bytes()))


def write_crl(layout: FleetLayout, ca: Ca, revoked: list[x509.RevokedCertificate]) -> None:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now() - dt.timedelta(minutes=5))
        .next_update(now() + dt.timedelta(days=CRL_DAYS))
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(ca.key, hashes.SHA256())
    layout.crl.parent.mkdir(parents=True, exist_ok=True)
    temporary = layout.crl.with_suffix(".pem.new")
    temporary.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    temporary.replace(layout.crl)  # the broker never reads a half-written CRL
