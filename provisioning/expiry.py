"""Certificates and the CRL that expire soon: what `fleet status` warns about before it bites.

An expired gateway certificate locks that gateway out of the broker; an expired CA or CRL
locks out every client at once (Mosquitto checks the CRL's next-update time).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509

from fleet.layout import FleetLayout
from provisioning.identity import revoked_serials

WARN_DAYS = 30


@dataclass(frozen=True)
class ExpiryWarning:
    what: str  # "gateway gw-07 certificate", "CA certificate", "CRL"
    gateway: str  # "" for the CA and the CRL
    expires: dt.datetime
    days_left: float

    @property
    def expired(self) -> bool:
        return self.days_left <= 0

    def message(self) -> str:
        if self.expired:
            return f"{self.what} expired on {self.expires:%Y-%m-%d}: {self.remedy()}"
        when = f"{self.days_left:.0f} days ({self.expires:%Y-%m-%d})"
        return f"{self.what} expires in {when}: {self.remedy()}"

    def remedy(self) -> str:
        if self.gateway:
            return f"run `fleet provision {self.gateway} --renew` and update the gateway"
        if self.what == "CRL":
            return "run `fleet ca crl` to re-sign it, then reload the broker"
        return "plan a CA rotation now"


def expiry_warnings(
    layout: FleetLayout, within_days: float = WARN_DAYS, now: dt.datetime | None = None
) -> list[ExpiryWarning]:
    """Everything in the fleet's PKI that expires within `within_days` (revoked certs skipped)."""
    now = now or dt.datetime.now(dt.UTC)
    found: list[tuple[str, str, dt.datetime]] = []
    if layout.ca_cert.exists():
        ca = x509.load_pem_x509_certificate(layout.ca_cert.read_bytes())
        found.append(("CA certificate", "", ca.not_valid_after_utc))
    if layout.crl.exists():
        crl = x509.load_pem_x509_crl(layout.crl.read_bytes())
        if crl.next_update_utc is not None:
            found.append(("CRL", "", crl.next_update_utc))
    revoked = revoked_serials(layout)
    for path in sorted((layout.pki_dir / "gateways").glob("*.crt")):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        if cert.serial_number not in revoked:
            found.append((f"gateway {path.stem} certificate", path.stem, cert.not_valid_after_utc))
    warnings = []
    for what, gateway, expires in found:
        days_left = (expires - now).total_seconds() / 86400
        if days_left <= within_days:
            warnings.append(ExpiryWarning(what, gateway, expires, days_left))
    return sorted(warnings, key=lambda w: w.days_left)
