"""Alarms (lifecycle, persistence, live push) and monitoring (SPC over stored readings)."""

from edge_node.alarms.config import LimitsEntry, MonitoringConfig
from edge_node.alarms.feed import Feed
from edge_node.alarms.monitor import ChainedLimits, LimitsSource, Monitor, StaticLimits
from edge_node.alarms.service import Alarm, AlarmChange, AlarmError, AlarmService

__all__ = [
    "Alarm",
    "AlarmChange",
    "AlarmError",
    "AlarmService",
    "ChainedLimits",
    "Feed",
    "LimitsEntry",
    "LimitsSource",
    "Monitor",
    "MonitoringConfig",
    "StaticLimits",
]
