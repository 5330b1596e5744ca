"""Rollouts: a pure state machine (waves, gates, thresholds) and the shell that drives it."""
