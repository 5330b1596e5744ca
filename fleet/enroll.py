"""Enrollment: a gateway heard on the broker but not in the inventory is new until accepted.

A gateway can only publish its status under its own certificate's CN (the shipped ACL), so a
status on `gw/<id>/status` already proves the broker trusted a certificate named <id>. The
fleet accepts on its own only when `enrollment.auto_accept` is set and the certificate the
fleet issued for <id> is on file, signed by the fleet's CA, in date and not revoked.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from fleet.inventory import GatewayEntry, Inventory, save_gateway_entry
from fleet.layout import FleetLayout


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    key = ca.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            assert cert.signature_hash_algorithm is not None
            key.verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
            )
        elif isinstance(key, rsa.RSAPublicKey):
            assert cert.signature_hash_algorithm is not None
            key.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                padding.PKCS1v15(),
                cert.signature_hash_algorithm,
            )
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def certificate_problem(
    layout: FleetLayout, gateway_id: str, now: dt.datetime | None = None
) -> str:
    """Why the gateway's certificate on file is not good enough, or '' when it is."""
    path, ca_path = layout.gateway_cert(gateway_id), layout.ca_cert
    if not path.exists() or not ca_path.exists():
        return f"no certificate on file ({path} and {ca_path} are needed)"
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    now = now or dt.datetime.now(dt.UTC)
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if not names or names[0].value != gateway_id:
        return f"{path}: its CN is not {gateway_id}"
    if not _signed_by(cert, ca):
        return f"{path}: not signed by the fleet CA {ca_path}"
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return f"{path}: expired or not yet valid (valid until {cert.not_valid_after_utc:%Y-%m-%d})"
    if layout.crl.exists():
        crl = x509.load_pem_x509_crl(layout.crl.read_bytes())
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            return f"{path}: revoked (in {layout.crl})"
    return ""


def expiring(
    layout: FleetLayout,
    gateway_ids: list[str],
    within_days: int = 30,
    now: dt.datetime | None = None,
) -> dict[str, dt.datetime]:
    """Gateways whose certificate on file expires within `within_days` (or has expired)."""
    limit = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(days=within_days)
    found = {}
    for gateway_id in gateway_ids:
        path = layout.gateway_cert(gateway_id)
        if path.exists():
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            if cert.not_valid_after_utc <= limit:
                found[gateway_id] = cert.not_valid_after_utc
    return found


def accept_gateway(
    inventory: Inventory,
    gateway_id: str,
    site: str = "",
    line: str = "",
    address: str = "",
    labels: dict[str, str] | None = None,
) -> GatewayEntry:
    """The inventory entry a newly accepted gateway gets (not yet saved)."""
    return GatewayEntry.model_validate(
        {
            "id": gateway_id,
            "site": site,
            "line": line,
            "address": address,
            "backend": inventory.config.enrollment.default_backend,
            "labels": labels or {},
        }
    )


def auto_accept(inventory: Inventory, heard: list[str]) -> list[str]:
    """Accept every heard-but-unknown gateway with a valid certificate, when fleet.yaml says so."""
    if not inventory.config.enrollment.auto_accept:
        return []
    accepted = []
    for gateway_id in sorted(set(heard) - set(inventory.gateways)):
        if certificate_problem(inventory.layout, gateway_id):
            continue
        entry = accept_gateway(inventory, gateway_id, labels={"enrolled": "auto"})
        save_gateway_entry(inventory.layout, entry)
        accepted.append(gateway_id)
    return accepted
