"""Fault-injection tests with real processes (issue 4): kill -9, outages, full disks, damage."""
