"""Why a secured OPC UA connect failed, named so a technician knows which side to fix.

Many servers refuse a secure channel by closing the socket after an error message that asyncua
does not decode (seen with node-opcua: a bare ConnectionError, or an AssertionError inside the
handshake), so the cause is worked out from what can be checked, in order: the network
(refused, timeout), our own certificate's dates (a clock without NTP, or an expired
certificate), a status code the server did send, a policy or mode the endpoint does not offer,
and a pinned server certificate that is not the one the endpoint presents (compared over an
unsecured discovery connection). What is left is most often an untrusted client certificate.
"""

from __future__ import annotations

import datetime as dt

from asyncua import Client, ua
from cryptography import x509

from gateway_image.firmware.connectors.advice import (
    Failure,
    classify_network,
    classify_opcua_status,
)


def certificate_period_problem(der_or_pem: bytes, now: dt.datetime | None = None) -> str:
    """'' when the certificate is valid now, else what is wrong with its dates."""
    try:
        cert = x509.load_der_x509_certificate(der_or_pem)
    except ValueError:
        cert = x509.load_pem_x509_certificate(der_or_pem)
    now = now or dt.datetime.now(dt.UTC)
    if now < cert.not_valid_before_utc:
        return (
            f"not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (is the clock right?)"
        )
    if now > cert.not_valid_after_utc:
        return f"expired on {cert.not_valid_after_utc:%Y-%m-%d}"
    return ""


async def presented_certificate(endpoint: str) -> bytes | None:
    """The certificate the endpoint offers, read without security (as discovery allows);
    the caller bounds the time."""
    try:
        endpoints = await Client(endpoint).connect_and_get_server_endpoints()
    except (OSError, TimeoutError, ua.UaError):
        return None
    for description in endpoints:
        if description.ServerCertificate:
            return bytes(description.ServerCertificate)
    return None


def classify(exc: BaseException, own_period: str) -> Failure | None:
    """The failure class from what one failed connect left behind (pure)."""
    network = classify_network(exc)
    if network is not None:  # nothing secure was tried: the server was never reached
        return network
    if own_period:
        return Failure.EXPIRED
    failure = classify_opcua_status(type(exc).__name__)
    if failure is not None:
        return failure
    if isinstance(exc, ua.UaError) and "No matching endpoints" in str(exc):
        return Failure.POLICY
    return None
