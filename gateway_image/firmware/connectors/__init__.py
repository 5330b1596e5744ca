"""Device connectors: one folder per protocol family, registered lazily in registry.py.

Each family's folder holds its config model (config.py), its connector, its codec and a sample
config. A family's `__init__` imports nothing, so loading one family's config model never
loads another family's protocol library.
"""
