"""Provisioning: gateway identities, per-gateway config and SD-card image customisation."""
