"""Device connectors: one module per protocol, registered explicitly in registry.py."""
