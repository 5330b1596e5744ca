"""The simulated anodizing line: a device simulator, a broker launcher and the one-command run.

Neither tier: it ships in the `sim` extra and never on a gateway (see docs/architecture.md).
"""
