"""Fault-injection tests with real processes: kill -9, outages, full disks, damage."""
