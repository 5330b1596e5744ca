"""Rules and workflows at the edge: YAML-declared triggers, conditions and actions, hot-reloaded.

Import from the submodules (engine, model, actions, store, config): this package imports
nothing itself, so edge_node.config can import rules.config without a cycle.
"""
