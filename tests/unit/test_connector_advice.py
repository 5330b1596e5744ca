"""Failure classes and advice: one table per connector family, filled in and complete."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from gateway_image.firmware.connectors.advice import (
    ADVICE,
    Failure,
    classify_network,
    classify_opcua_status,
    explain,
)


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), Failure.REFUSED),
        (TimeoutError(), Failure.TIMEOUT),
        (socket.gaierror(-2, "Name or service not known"), Failure.UNREACHABLE),
        (OSError(errno.EHOSTUNREACH, "No route to host"), Failure.UNREACHABLE),
        (ssl.SSLError("certificate verify failed"), Failure.SECURITY),
        (ValueError("not a transport error"), None),
    ],
)
def test_network_failures(exc: BaseException, failure: Failure | None) -> None:
    assert classify_network(exc) is failure


def test_opcua_status_names_map_to_what_to_fix() -> None:
    assert classify_opcua_status("BadCertificateUntrusted") is Failure.UNTRUSTED
    assert classify_opcua_status("BadSecurityModeRejected") is Failure.POLICY
    assert classify_opcua_status("BadCertificateTimeInvalid") is Failure.EXPIRED
    assert classify_opcua_status("BadUserAccessDenied") is Failure.AUTHENTICATION
    assert classify_opcua_status("BadNodeIdUnknown") is None


def test_advice_names_the_certificate_and_differs_by_class() -> None:
    untrusted = explain("opcua", Failure.UNTRUSTED, "cannot connect", certificate="/etc/gw.der")
    assert untrusted.startswith("certificate not trusted: cannot connect; ")
    assert "/etc/gw.der" in untrusted and "rejected folder" in untrusted
    policy = explain("opcua", Failure.POLICY, "cannot connect", certificate="/etc/gw.der")
    assert "security.policy" in policy and "rejected folder" not in policy


def test_every_family_advises_distinctly() -> None:
    for family, table in ADVICE.items():
        texts = list(table.values())
        assert len(set(texts)) == len(texts), f"{family}: two classes share one advice"
        for failure in table:
            explain(family, failure, "detail", certificate="c")  # every placeholder fillable


def test_troubleshooting_lists_every_failure_class() -> None:
    """The technician's page and the code name the same classes (the page quotes them)."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "hardware" / "troubleshooting.md").read_text()
    section = page.split("### Failure classes", 1)[1]
    missing = [f.value for f in Failure if f"| `{f.value}` |" not in section]
    assert not missing, f"hardware/troubleshooting.md lacks {missing}"
