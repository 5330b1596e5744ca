"""What a failure to talk to a device means, and what to do about it, per connector family.

One table serves every place a technician reads it: the connector's error (so the log line,
the `last_error` in the gateway's status and `gateway check --probe` say the same thing) and
hardware/troubleshooting.md, which a test keeps in step with it. Classification is pure:
an exception (or a protocol's status name) in, a failure class out.
"""

from __future__ import annotations

import errno
import socket
import ssl
from enum import StrEnum


class Failure(StrEnum):
    REFUSED = "connection refused"
    TIMEOUT = "no answer (timeout)"
    UNREACHABLE = "host unreachable"
    SECURITY = "security handshake refused"
    UNTRUSTED = "certificate not trusted"
    EXPIRED = "certificate expired or not yet valid"
    POLICY = "security policy or mode rejected"
    SERVER_CERT = "server certificate does not match the pinned one"
    AUTHENTICATION = "login refused"
    WRONG_UNIT = "no unit answered"
    ILLEGAL_ADDRESS = "illegal data address"
    FRAMING = "garbled frame (bad CRC)"
    PORT = "serial port cannot be opened"
    NO_REPLY = "no reply to a request"


ADVICE: dict[str, dict[Failure, str]] = {
    "modbus": {
        Failure.REFUSED: "the device answers but nothing listens on that port: check `port` "
        "(502 is the Modbus TCP default) and that Modbus TCP is enabled on the device",
        Failure.TIMEOUT: "nothing answers at that address: check the device is powered, its IP "
        "address, the Ethernet cable and switch port, and any firewall or VLAN between",
        Failure.UNREACHABLE: "the gateway has no route to that address: check `host` and the "
        "gateway's own network settings (address, netmask)",
        Failure.WRONG_UNIT: "the link is up but no unit id answered: check each device's unit id "
        "(slave address); on RS-485 also baud rate, parity and the A/B wires",
        Failure.ILLEGAL_ADDRESS: "the device has no register there: manuals often number "
        "registers from 1 (40001 = holding address 0): subtract one, or check the table",
        Failure.FRAMING: "replies are corrupted: baud rate or parity differ between gateway and "
        "device, the A/B wires are swapped, or the bus lacks termination or bias",
        Failure.PORT: "check the adapter is plugged in, the path (ls /dev/serial/by-id/) and "
        "that the gateway user is in group dialout",
    },
    "opcua": {
        Failure.REFUSED: "nothing listens on that port: check the endpoint URL's port and that "
        "the OPC UA server is running",
        Failure.TIMEOUT: "nothing answers at that address: check the host, the network path and "
        "the server's firewall",
        Failure.UNREACHABLE: "the gateway has no route to that host: check the endpoint URL",
        Failure.UNTRUSTED: "the server does not trust the gateway's certificate: on the server, "
        "move it from the rejected folder to the trusted one (or import {certificate} into its "
        "trust list), then wait for the next reconnect",
        Failure.SECURITY: "the server closed the secure channel: most often it does not (yet) "
        "trust the gateway's certificate {certificate}: on the server, move it from the "
        "rejected certificates to the trusted ones (most servers file unknown certificates "
        "there), then wait for the next reconnect; if it is trusted, check the server's clock",
        Failure.EXPIRED: "a certificate is outside its validity period: check the gateway's and "
        "the server's clocks (NTP), then renew {certificate} if it has expired",
        Failure.POLICY: "the server does not offer this security policy and mode: set "
        "security.policy and security.mode to one the server's endpoint lists",
        Failure.SERVER_CERT: "the server presented another certificate than "
        "security.server_certificate: if the server's certificate was renewed on purpose, "
        "copy the new one to the gateway; otherwise suspect a wrong endpoint",
        Failure.AUTHENTICATION: "the server refused the user name or password: check username "
        "and password, and that the user may read these nodes",
    },
    "serial": {
        Failure.PORT: "check the adapter is plugged in, the path (ls /dev/serial/by-id/) and "
        "that the gateway user is in group dialout",
        Failure.NO_REPLY: "check the baud rate and parity, that the instrument is switched on "
        "and in remote (or print) mode, and the TX/RX wires",
        Failure.FRAMING: "lines arrive corrupted: baud rate, parity or the line terminator differ "
        "from the instrument's settings",
    },
}

# OPC UA status codes (OPC 10000-4, 7.34 and the status code table) grouped by what to fix.
_OPCUA_STATUS = {
    "BadCertificateUntrusted": Failure.UNTRUSTED,
    "BadSecurityChecksFailed": Failure.SECURITY,
    "BadCertificateTimeInvalid": Failure.EXPIRED,
    "BadCertificateIssuerTimeInvalid": Failure.EXPIRED,
    "BadSecurityPolicyRejected": Failure.POLICY,
    "BadSecurityModeRejected": Failure.POLICY,
    "BadCertificateUriInvalid": Failure.SECURITY,
    "BadCertificateRevoked": Failure.UNTRUSTED,
    "BadIdentityTokenRejected": Failure.AUTHENTICATION,
    "BadIdentityTokenInvalid": Failure.AUTHENTICATION,
    "BadUserAccessDenied": Failure.AUTHENTICATION,
}


def classify_network(exc: BaseException) -> Failure | None:
    """The class of a transport failure, from the exception alone."""
    if isinstance(exc, ConnectionRefusedError):
        return Failure.REFUSED
    if isinstance(exc, TimeoutError | socket.timeout):
        return Failure.TIMEOUT
    if isinstance(exc, socket.gaierror):
        return Failure.UNREACHABLE
    if isinstance(exc, ssl.SSLError):
        return Failure.SECURITY
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return Failure.UNREACHABLE
    return None


def classify_opcua_status(name: str) -> Failure | None:
    """From an asyncua exception class name or status name, e.g. 'BadCertificateUntrusted'."""
    return _OPCUA_STATUS.get(name)


def advise(family: str, failure: Failure, **names: str) -> str:
    """The advice for `failure` in `family`, with file names filled in."""
    return ADVICE[family][failure].format(**names)


def explain(family: str, failure: Failure, detail: str, **names: str) -> str:
    """'<class>: <detail>; <what to do>', the one shape every connector error takes."""
    return f"{failure.value}: {detail}; {advise(family, failure, **names)}"
