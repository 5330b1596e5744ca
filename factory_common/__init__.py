"""Pieces every tier shares: the wire contract, config loading and structured logging."""
