"""The MQTT uplink: batches from the buffer to the edge, receipts, status and commands."""

from gateway_image.firmware.uplink.uplink import Uplink

__all__ = ["Uplink"]
