"""Modbus TCP and RTU: config models, register codec, read coalescing and both connectors."""
