"""The fleet's state: rollouts, per-gateway steps, claims and audit, in one SQL schema."""
