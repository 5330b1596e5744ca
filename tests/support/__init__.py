"""Shared test helpers: real servers started on free loopback ports."""
