"""Rules and workflows at the edge: YAML-declared triggers, conditions and actions, hot-reloaded."""

from edge_node.rules.actions import Services
from edge_node.rules.config import RulesConfig
from edge_node.rules.engine import RuleEngine
from edge_node.rules.model import Rule, RulesFile
from edge_node.rules.store import FiringStore

__all__ = ["FiringStore", "Rule", "RuleEngine", "RulesConfig", "RulesFile", "Services"]
